import { strict as assert } from "node:assert";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { partitionFacts } from "../components/partition";
import { sageMakerExecutionPolicy, triggerFunctionPolicy, type PolicyDocument } from "../components/roles";

/**
 * The roles grant what the code sends, and nothing else: every AWS SDK call in
 * trigger/ and runtime/src/ is mapped to the IAM actions AWS authorises it as
 * (Service Authorization Reference), and the granted actions must equal those
 * plus the few that AWS services perform with the role on the code's behalf.
 * A new SDK call without a grant, or a grant nobody calls, fails here.
 */
const ROOT = join(__dirname, "..");

/** SDK call → IAM actions. */
const ACTIONS_OF: Record<string, string[]> = {
  GetObjectCommand: ["s3:GetObject"],
  HeadObjectCommand: ["s3:GetObject"],
  PutObjectCommand: ["s3:PutObject"],
  DeleteObjectCommand: ["s3:DeleteObject"],
  ListObjectsV2Command: ["s3:ListBucket"],
  paginateListObjectsV2: ["s3:ListBucket"],
  // @aws-sdk/lib-storage Upload: PutObject or CreateMultipartUpload/UploadPart/Complete (all s3:PutObject), AbortMultipartUpload on failure.
  Upload: ["s3:PutObject", "s3:AbortMultipartUpload"],
  CreateTransformJobCommand: ["sagemaker:CreateTransformJob"],
  ListTransformJobsCommand: ["sagemaker:ListTransformJobs"],
  paginateListTransformJobs: ["sagemaker:ListTransformJobs"],
  DescribeTransformJobCommand: ["sagemaker:DescribeTransformJob"],
  SendMessageCommand: ["sqs:SendMessage"],
  ReceiveMessageCommand: ["sqs:ReceiveMessage"],
  DeleteMessageCommand: ["sqs:DeleteMessage"],
  ChangeMessageVisibilityCommand: ["sqs:ChangeMessageVisibility"],
  GetQueueAttributesCommand: ["sqs:GetQueueAttributes"],
  InvokeEndpointAsyncCommand: ["sagemaker:InvokeEndpointAsync"],
};
/** The dispatcher's calls that only one serving mode makes (trigger/aws-ports.ts, trigger/async-job-control.ts). */
const TRANSFORM_ONLY = ["CreateTransformJobCommand", "ListTransformJobsCommand", "paginateListTransformJobs", "DescribeTransformJobCommand"];
const ASYNC_ONLY = ["InvokeEndpointAsyncCommand"];
const without = (calls: Set<string>, drop: string[]) => new Set([...calls].filter((c) => !drop.includes(c)));

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (e === "node_modules" || e === "test") continue;
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.ts$/.test(e) && !/\.test\.ts$/.test(e)) out.push(p);
  }
  return out;
}

function sdkCalls(dir: string): Set<string> {
  const calls = new Set<string>();
  for (const file of sources(join(ROOT, dir))) {
    const text = readFileSync(file, "utf8").replace(/\/\/.*$/gm, "");
    for (const m of text.matchAll(/new\s+(\w+Command)\s*\(/g)) calls.add(m[1]!);
    for (const m of text.matchAll(/\b(paginate\w+)\s*\(/g)) calls.add(m[1]!);
    if (/from "@aws-sdk\/lib-storage"/.test(text) && /new\s+Upload\s*\(/.test(text)) calls.add("Upload");
  }
  return calls;
}

function needed(calls: Set<string>, extra: string[]): string[] {
  const actions = new Set(extra);
  for (const c of calls) {
    assert.ok(ACTIONS_OF[c], `${c} has no entry in ACTIONS_OF: add the IAM actions AWS authorises it as`);
    for (const a of ACTIONS_OF[c]!) actions.add(a);
  }
  return [...actions].sort();
}

const granted = (doc: PolicyDocument) => [...new Set(doc.Statement.filter((s) => s.Effect === "Allow").flatMap((s) => s.Action))].sort();

const CN = { partition: "aws-cn", region: "cn-northwest-1", accountId: "111122223333", facts: partitionFacts("aws-cn") };
const PREFIXES = { input: "input/", output: "output/", requests: "requests/" };

describe("IAM least privilege: granted actions = the SDK calls the code sends (+ what AWS does with the role)", () => {
  it("trigger role", () => {
    const calls = sdkCalls("trigger");
    assert.ok(calls.has("CreateTransformJobCommand") && calls.has("HeadObjectCommand"), `scan found ${[...calls].join(", ")}`);
    const handler = readFileSync(join(ROOT, "trigger", "request.ts"), "utf8");
    const tagsOnCreate = /Tags:\s*\[/.test(handler);
    const doc = triggerFunctionPolicy({ ctx: CN, bucket: "data", prefixes: PREFIXES, jobNamePrefix: "fuxi-dev", modelArn: "arn:aws-cn:sagemaker:cn-northwest-1:111122223333:model/m", instanceType: "ml.g4dn.xlarge", logGroupArn: "arn:aws-cn:logs:cn-northwest-1:111122223333:log-group:/aws/lambda/fuxi-dev-trigger", runQueueArns: ["arn:aws-cn:sqs:cn-northwest-1:111122223333:fuxi-dev-runs", "arn:aws-cn:sqs:cn-northwest-1:111122223333:fuxi-dev-backfill"], deadLetterQueueArn: "arn:aws-cn:sqs:cn-northwest-1:111122223333:fuxi-dev-runs-dlq" });
    const byService = [
      "logs:CreateLogStream", "logs:PutLogEvents", // the Lambda service writes the function's logs
      // the Lambda service's event source mappings poll the run queues with the function's role
      "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
      ...(tagsOnCreate ? ["sagemaker:AddTags"] : []), // CreateTransformJob with Tags is authorised as AddTags too
    ];
    assert.deepEqual(granted(doc), needed(without(calls, ASYNC_ONLY), byService));
  });

  it("trigger role in serving.mode async: the endpoint instead of transform jobs", () => {
    const calls = sdkCalls("trigger");
    assert.ok(calls.has("InvokeEndpointAsyncCommand"), `scan found ${[...calls].join(", ")}`);
    const doc = triggerFunctionPolicy({ ctx: CN, bucket: "data", prefixes: PREFIXES, jobNamePrefix: "fuxi-dev", modelArn: "m", instanceType: "ml.g4dn.xlarge", logGroupArn: "l", runQueueArns: ["q1", "q2"], deadLetterQueueArn: "d", asyncEndpointArn: "arn:aws-cn:sagemaker:cn-northwest-1:111122223333:endpoint/fuxi-dev-async" });
    const byService = ["logs:CreateLogStream", "logs:PutLogEvents", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"];
    assert.deepEqual(granted(doc), needed(without(calls, TRANSFORM_ONLY), byService));
  });

  it("SageMaker execution role (the runtime container)", () => {
    const calls = sdkCalls(join("runtime", "src"));
    assert.ok(calls.has("GetObjectCommand") && calls.has("Upload"), `scan found ${[...calls].join(", ")}`);
    const doc = sageMakerExecutionPolicy({ ctx: CN, bucket: "data", prefixes: PREFIXES, model: { bucket: "w", key: "fuxi/", kind: "prefix" }, repositoryArn: "arn:aws-cn:ecr:cn-northwest-1:111122223333:repository/r", jobNamePrefix: "fuxi-dev" });
    const byService = [
      "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", // SageMaker pulls the image
      "logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents", // SageMaker ships the container's stdout
      "cloudwatch:PutMetricData", // SageMaker publishes the job's instance metrics
    ];
    assert.deepEqual(granted(doc), needed(calls, byService));
  });

  it("the scan sees a new call (the check can fail)", () => {
    const calls = new Set(["GetObjectCommand", "ListTransformJobsCommand"]);
    assert.notDeepEqual(needed(calls, []), ["s3:GetObject"]);
    assert.throws(() => needed(new Set(["CopyObjectCommand"]), []), /CopyObjectCommand has no entry/);
  });
});
