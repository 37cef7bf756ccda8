/**
 * The real Pulumi program (index.ts) with the real Pulumi.dev.yaml / Pulumi.prod.yaml,
 * run under mocks (tools/mock-program.ts): no CLI, no AWS.
 */
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readConfig as readRuntimeEnv } from "../runtime/src/config";
import { TRIGGER_ENV_NAMES, TRIGGER_REQUIRED_ENV_NAMES } from "../runtime/src/contract";
import { readTriggerEnv } from "../trigger/env";
import { MockProgramError, runProgramUnderMocks, wellKeptBucket, type MockedResource, type MockRunResult } from "../tools/mock-program";

const ACCOUNT = "123456789012";

/** One child-process run per distinct option set (each takes seconds). */
const runs = new Map<string, Promise<MockRunResult>>();
function run(options: Parameters<typeof runProgramUnderMocks>[0]): Promise<MockRunResult> {
  const key = JSON.stringify(options);
  if (!runs.has(key)) runs.set(key, runProgramUnderMocks(options));
  return runs.get(key)!;
}

/** Resource types and how many of each one stack has (alert e-mail subscriptions vary). */
function expectedCounts(emails: number, createsBucket = true): Record<string, number> {
  // An adopted bucket is read, not created: the bucket and the five settings the pack checks.
  return {
    "pulumi:pulumi:Stack": 1,
    "fuxi:storage:DataBucket": 1,
    "fuxi:image:InferenceImage": 1,
    "fuxi:iam:SageMakerExecutionRole": 1,
    "fuxi:sagemaker:ForecastModel": 1,
    "fuxi:trigger:Trigger": 1,
    "fuxi:iam:TriggerFunctionRole": 1,
    "fuxi:monitoring:Alerts": 1,
    ...(createsBucket
      ? {
          "aws:s3/bucket:Bucket": 1,
          "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 1,
          "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 1,
          "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 1,
          "aws:s3/bucketVersioning:BucketVersioning": 1,
          "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 1,
          "aws:s3/bucketPolicy:BucketPolicy": 1,
        }
      : {
          "aws:s3/bucket:Bucket": 1,
          "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 1,
          "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 1,
          "aws:s3/bucketVersioning:BucketVersioning": 1,
          "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 1,
          "aws:s3/bucketPolicy:BucketPolicy": 1,
        }),
    "aws:ecr/repository:Repository": 1,
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": 1,
    "docker:index/image:Image": 1,
    "aws:iam/role:Role": 2,
    "aws:iam/rolePolicy:RolePolicy": 2,
    "aws:sagemaker/model:Model": 1,
    "aws:cloudwatch/logGroup:LogGroup": 1,
    "fuxi:queue:RunQueues": 1,
    "aws:sqs/queue:Queue": 3,
    "aws:sqs/queuePolicy:QueuePolicy": 3,
    "aws:kms/key:Key": 1,
    "aws:lambda/function:Function": 1,
    "aws:lambda/eventSourceMapping:EventSourceMapping": 2,
    "aws:s3/bucketNotification:BucketNotification": 1,
    "aws:sns/topic:Topic": 1,
    "aws:sns/topicPolicy:TopicPolicy": 1,
    ...(emails ? { "aws:sns/topicSubscription:TopicSubscription": emails } : {}),
    "aws:cloudwatch/eventRule:EventRule": 1,
    "aws:cloudwatch/eventTarget:EventTarget": 1,
    "aws:cloudwatch/metricAlarm:MetricAlarm": 4,
  };
}

const all = (r: MockRunResult, type: string) => r.resources.filter((x) => x.type === type);
function one(r: MockRunResult, type: string, nameEndsWith = ""): MockedResource {
  const found = all(r, type).filter((x) => x.name.endsWith(nameEndsWith) || x.name === nameEndsWith.replace(/^-/, ""));
  assert.equal(found.length, 1, `expected one ${type} named *${nameEndsWith}, found ${found.map((x) => x.name).join(", ") || "none"}`);
  return found[0]!;
}

/** Every string in a value, skipping archive contents (bundled SDK code holds ARN templates). */
function strings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => (k === "__archive" ? [] : strings(v)));
  }
  return [];
}

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource?: string | string[];
  Principal?: { Service?: string } | string;
  Condition?: Record<string, Record<string, string | string[]>>;
}
const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const statements = (json: string): Statement[] => (JSON.parse(json) as { Statement: Statement[] }).Statement;

/** Actions AWS only grants on Resource "*". */
const STAR_RESOURCE_ACTIONS = new Set(["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData", "sagemaker:ListTransformJobs"]);

interface Expect {
  stack: "dev" | "prod";
  partition: "aws" | "aws-cn";
  region: string;
  dnsSuffix: string;
  prefixes: { input: string; output: string; requests: string };
  model: { bucket: string; key: string; kind: "prefix" | "archive" };
  cascadeSteps: number[];
  instanceType: string;
  emails: string[];
}

function checkStack(describeName: string, run: () => Promise<MockRunResult>, e: Expect): void {
  describe(describeName, function () {
    this.timeout(120_000);
    let r: MockRunResult;
    const prefix = `fuxi-${e.stack}`;
    before(async () => {
      r = await run();
    });

    const bucketName = () => String(r.outputs.dataBucket);
    const bucketArn = () => `arn:${e.partition}:s3:::${bucketName()}`;
    const role = (suffix: string) => one(r, "aws:iam/role:Role", suffix);
    const policyOf = (suffix: string) => statements(one(r, "aws:iam/rolePolicy:RolePolicy", `${suffix}-policy`).inputs.policy);
    const sageMakerRoleArn = () => `arn:${e.partition}:iam::${ACCOUNT}:role/${role("-sagemaker").outputs.name}`;
    const fn = () => one(r, "aws:lambda/function:Function");

    it("creates exactly the expected resource set", () => {
      const counts: Record<string, number> = {};
      for (const x of r.resources) counts[x.type] = (counts[x.type] ?? 0) + 1;
      assert.deepEqual(counts, expectedCounts(e.emails.length));
      assert.equal(new Set(r.resources.map((x) => x.urn)).size, r.resources.length, "URNs are unique");
    });

    it("parents every resource: components under the stack, AWS resources under a component", () => {
      const stackUrn = one(r, "pulumi:pulumi:Stack").urn;
      const components = new Set(r.resources.filter((x) => !x.custom).map((x) => x.urn));
      for (const x of r.resources) {
        if (x.type === "pulumi:pulumi:Stack") continue;
        if (x.custom) assert.ok(x.parent && components.has(x.parent) && x.parent !== stackUrn, `${x.type} ${x.name} is not inside a component`);
        else assert.ok(x.parent === stackUrn || (x.parent && components.has(x.parent)), `${x.type} ${x.name} has parent ${x.parent}`);
      }
      assert.equal(one(r, "fuxi:iam:TriggerFunctionRole").parent, one(r, "fuxi:trigger:Trigger").urn);
    });

    it(`puts partition ${e.partition} in every ARN and ${e.dnsSuffix} in every endpoint`, () => {
      const texts = [...r.resources.flatMap((x) => strings(x.inputs)), ...strings(r.outputs)];
      const arns = texts.flatMap((t) => [...t.matchAll(/arn:([a-z-]*):/g)].map((m) => m[1]));
      assert.ok(arns.length > 25, `only ${arns.length} ARNs found`);
      assert.deepEqual([...new Set(arns)], [e.partition]);
      // Regional endpoints carry the partition's DNS suffix (service principals such as
      // sagemaker.amazonaws.com are the same in both partitions and are checked elsewhere).
      const host = new RegExp(`\\.${e.region}\\.amazonaws\\.com(\\.cn)?`, "g");
      const suffixes = texts.flatMap((t) => [...t.matchAll(host)].map((m) => (m[1] ? "amazonaws.com.cn" : "amazonaws.com")));
      assert.ok(suffixes.length >= 3);
      assert.deepEqual([...new Set(suffixes)], [e.dnsSuffix]);
      assert.ok(String(r.outputs.imageUri).startsWith(`${ACCOUNT}.dkr.ecr.${e.region}.${e.dnsSuffix}/`));
    });

    it("uses the image by digest in the model, pushed under an immutable content tag", () => {
      const imageUri = String(r.outputs.imageUri);
      assert.match(imageUri, new RegExp(`^${ACCOUNT}\\.dkr\\.ecr\\.${e.region}\\.${e.dnsSuffix.replace(/\./g, "\\.")}/${prefix}-runtime@sha256:[0-9a-f]{64}$`));
      const model = one(r, "aws:sagemaker/model:Model");
      assert.equal(model.inputs.primaryContainer.image, imageUri);
      assert.equal(model.inputs.executionRoleArn, sageMakerRoleArn());
      const image = one(r, "docker:index/image:Image");
      assert.match(image.inputs.imageName, /:src-[0-9a-f]{16}$/);
      assert.equal(image.inputs.build.platform, "linux/amd64");
      assert.equal(image.inputs.build.builderVersion, "BuilderBuildKit");
      assert.match(image.inputs.build.context, /\/runtime$/);
      assert.match(image.inputs.build.args.BASE_IMAGE, new RegExp(`^\\d{12}\\.dkr\\.ecr\\.${e.region}\\.${e.dnsSuffix.replace(/\./g, "\\.")}/`));
      assert.equal(image.inputs.registry.username, "AWS");
      assert.ok(image.secretInputs.includes("registry.password"), "the ECR password stays secret");
      const repo = one(r, "aws:ecr/repository:Repository");
      assert.equal(repo.inputs.imageTagMutability, "IMMUTABLE");
      assert.equal(repo.inputs.imageScanningConfiguration.scanOnPush, true);
      assert.equal(repo.inputs.forceDelete, e.stack === "dev", "only dev lets destroy delete pushed images");
      const lifecycle = JSON.parse(one(r, "aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs.policy);
      assert.deepEqual(lifecycle.rules[0].selection, { tagStatus: "any", countType: "imageCountMoreThan", countNumber: 10 });
    });

    it("gives the model the runtime environment the runtime reads, and ModelDataUrl only for an archive", () => {
      const container = one(r, "aws:sagemaker/model:Model").inputs.primaryContainer;
      const env = container.environment as Record<string, string>;
      assert.ok(Object.keys(env).length <= 16);
      const runtime = readRuntimeEnv(env);
      assert.deepEqual(runtime.providers, ["cuda"]);
      assert.deepEqual([runtime.instanceType, runtime.instanceCount], [e.instanceType, 1], "the manifest's usage names the jobs' instance");
      if (e.model.kind === "prefix") {
        assert.equal(runtime.modelS3Uri, `s3://${e.model.bucket}/${e.model.key}`);
        assert.equal(container.modelDataUrl, undefined);
      } else {
        assert.equal(env.FUXI_MODEL_S3_URI, undefined);
        assert.equal(container.modelDataUrl, `s3://${e.model.bucket}/${e.model.key}`);
      }
      assert.equal(container.modelDataSource, undefined, "Batch Transform rejects ModelDataSource");
    });

    it("IAM: no wildcard actions, Resource * only where AWS requires it, no managed policies", () => {
      assert.deepEqual(all(r, "aws:iam/rolePolicyAttachment:RolePolicyAttachment"), []);
      for (const x of all(r, "aws:iam/role:Role")) assert.equal(x.inputs.managedPolicyArns, undefined);
      for (const policy of all(r, "aws:iam/rolePolicy:RolePolicy")) {
        for (const s of statements(policy.inputs.policy)) {
          assert.equal(s.Effect, "Allow");
          for (const action of list(s.Action)) assert.match(action, /^[a-z0-9-]+:[A-Za-z]+$/, `${policy.name} ${s.Sid}: ${action}`);
          if (list(s.Resource).includes("*")) {
            assert.deepEqual(list(s.Resource), ["*"]);
            for (const action of list(s.Action)) assert.ok(STAR_RESOURCE_ACTIONS.has(action), `${policy.name} ${s.Sid}: ${action} on "*"`);
          }
        }
      }
      const metrics = policyOf("-sagemaker").find((s) => list(s.Action).includes("cloudwatch:PutMetricData"))!;
      assert.deepEqual(metrics.Condition, { StringEquals: { "cloudwatch:namespace": "/aws/sagemaker/TransformJobs" } });
    });

    it("IAM: trust policies name the partition's service principals", () => {
      const trust = (suffix: string) => statements(role(suffix).inputs.assumeRolePolicy);
      assert.deepEqual(trust("-sagemaker"), [{ Sid: "AssumeByService", Effect: "Allow", Principal: { Service: "sagemaker.amazonaws.com" }, Action: ["sts:AssumeRole"] }]);
      assert.deepEqual(trust("-trigger-role"), [{ Sid: "AssumeByService", Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: ["sts:AssumeRole"] }]);
    });

    it("IAM: S3 access is scoped to the configured prefixes and the model artifacts", () => {
      const data = bucketName();
      const p = e.prefixes;
      const objectArn = (bucket: string, key: string) => `arn:${e.partition}:s3:::${bucket}/${key}`;
      const grants = (stmts: Statement[]) => {
        const out: Record<string, string[]> = {};
        for (const s of stmts) for (const a of list(s.Action).filter((a) => a.startsWith("s3:"))) out[a] = [...(out[a] ?? []), ...list(s.Resource)].sort();
        return out;
      };
      const modelObjects = e.model.kind === "prefix" ? `${e.model.key}*` : e.model.key;
      assert.deepEqual(grants(policyOf("-sagemaker")), {
        "s3:GetObject": [objectArn(data, `${p.requests}*`), objectArn(data, `${p.input}*`), objectArn(data, `${p.output}*`), objectArn(e.model.bucket, modelObjects)].sort(),
        "s3:ListBucket": [bucketArn(), ...(e.model.kind === "prefix" ? [`arn:${e.partition}:s3:::${e.model.bucket}`] : [])].sort(),
        "s3:PutObject": [objectArn(data, `${p.output}*`)],
        "s3:AbortMultipartUpload": [objectArn(data, `${p.output}*`)],
        "s3:DeleteObject": [objectArn(data, `${p.output}*`)],
      });
      // Bucket-level ARNs carry nothing but ListBucket (object access is always under a prefix).
      for (const policy of all(r, "aws:iam/rolePolicy:RolePolicy")) {
        for (const st of statements(policy.inputs.policy)) {
          if (list(st.Resource).some((x) => /^arn:[^:]+:s3:::[^/]+$/.test(x))) assert.deepEqual(list(st.Action), ["s3:ListBucket"], `${policy.name} ${st.Sid}`);
        }
      }
      assert.deepEqual(grants(policyOf("-trigger-role")), {
        "s3:ListBucket": [bucketArn()],
        "s3:GetObject": [objectArn(data, `${p.requests}*`)],
        "s3:PutObject": [objectArn(data, `${p.output}*/_FAILED.json`), objectArn(data, `${p.requests}*`)].sort(),
      });
    });

    it("IAM: the Lambda starts only this stack's jobs, on this model and instance type, and passes no role", () => {
      const stmts = policyOf("-trigger-role");
      const regional = `arn:${e.partition}:sagemaker:${e.region}:${ACCOUNT}`;
      const jobs = stmts.find((s) => s.Sid === "StartTransformJobsOnTheModel")!;
      assert.deepEqual(list(jobs.Action), ["sagemaker:CreateTransformJob"]);
      assert.equal(jobs.Resource, `${regional}:transform-job/${prefix}-*`);
      assert.deepEqual(jobs.Condition, {
        ArnEquals: { "sagemaker:ModelArn": `${regional}:model/${String(r.outputs.modelName).toLowerCase()}` },
        "ForAllValues:StringEquals": { "sagemaker:InstanceTypes": [e.instanceType] },
        Null: { "sagemaker:InstanceTypes": "false" },
      });
      const tags = stmts.find((s) => s.Sid === "TagNewTransformJobs")!;
      assert.deepEqual(list(tags.Action), ["sagemaker:AddTags"]);
      assert.equal(tags.Resource, jobs.Resource);
      const logs = stmts.find((s) => list(s.Action).includes("logs:PutLogEvents"))!;
      assert.equal(logs.Resource, `arn:${e.partition}:logs:${e.region}:${ACCOUNT}:log-group:/aws/lambda/${prefix}-trigger:*`);
      const sqsArn = (name: string) => `arn:${e.partition}:sqs:${e.region}:${ACCOUNT}:${name}`;
      const consume = stmts.find((s) => s.Sid === "ConsumeRunQueues")!;
      assert.deepEqual(list(consume.Resource), [sqsArn(`${prefix}-runs`), sqsArn(`${prefix}-backfill`)]);
      assert.deepEqual(list(consume.Action).sort(), ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"]);
      const dead = stmts.find((s) => s.Sid === "DeadLetterRunsThatCannotStart")!;
      assert.deepEqual([list(dead.Action), dead.Resource], [["sqs:SendMessage"], sqsArn(`${prefix}-runs-dlq`)]);
      const count = stmts.find((s) => s.Sid === "CountTransformJobs")!;
      assert.deepEqual([list(count.Action), count.Resource], [["sagemaker:ListTransformJobs"], "*"]);
      const actions = stmts.flatMap((s) => list(s.Action)).sort();
      assert.deepEqual([...new Set(actions)], ["logs:CreateLogStream", "logs:PutLogEvents", "s3:GetObject", "s3:ListBucket", "s3:PutObject", "sagemaker:AddTags", "sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob", "sagemaker:ListTransformJobs", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"]);
    });

    it("IAM: SageMaker pulls only this repository and logs only this stack's job streams", () => {
      const stmts = policyOf("-sagemaker");
      const pull = stmts.find((s) => list(s.Action).includes("ecr:BatchGetImage"))!;
      assert.equal(pull.Resource, `arn:${e.partition}:ecr:${e.region}:${ACCOUNT}:repository/${prefix}-runtime`);
      const streams = stmts.find((s) => list(s.Action).includes("logs:PutLogEvents"))!;
      assert.equal(streams.Resource, `arn:${e.partition}:logs:${e.region}:${ACCOUNT}:log-group:/aws/sagemaker/TransformJobs:log-stream:${prefix}-*`);
    });

    it("notifies the operational run queue for <input>…/_SUCCESS only, after its queue policy admits this bucket and account", () => {
      const notification = one(r, "aws:s3/bucketNotification:BucketNotification");
      const queue = one(r, "aws:sqs/queue:Queue", "-operational");
      const policy = one(r, "aws:sqs/queuePolicy:QueuePolicy", "-operational-policy");
      assert.equal(notification.inputs.bucket, bucketName());
      assert.equal(notification.inputs.lambdaFunctions, undefined);
      assert.equal(notification.inputs.queues.length, 1);
      const target = notification.inputs.queues[0];
      assert.equal(target.queueArn, `arn:${e.partition}:sqs:${e.region}:${ACCOUNT}:${prefix}-runs`);
      assert.deepEqual(target.events, ["s3:ObjectCreated:*"]);
      assert.equal(target.filterPrefix, e.prefixes.input);
      assert.equal(target.filterSuffix, "_SUCCESS");
      assert.ok(notification.dependsOn.includes(policy.urn), "S3 validates the destination: the queue policy must exist first");
      const [tls, fromS3] = statements(policy.inputs.policy);
      assert.deepEqual(tls!.Condition, { Bool: { "aws:SecureTransport": "false" } });
      assert.equal(tls!.Effect, "Deny");
      assert.deepEqual(fromS3!.Principal, { Service: "s3.amazonaws.com" });
      assert.deepEqual(list(fromS3!.Action), ["sqs:SendMessage"]);
      assert.equal(fromS3!.Resource, queue.outputs.arn);
      assert.deepEqual(fromS3!.Condition, { ArnEquals: { "aws:SourceArn": bucketArn() }, StringEquals: { "aws:SourceAccount": ACCOUNT } });
      for (const q of all(r, "aws:sqs/queue:Queue")) {
        assert.equal(q.inputs.sqsManagedSseEnabled, true, `${q.name} encrypted`);
        assert.equal(q.inputs.messageRetentionSeconds, 14 * 24 * 3600);
      }
      for (const p of all(r, "aws:sqs/queuePolicy:QueuePolicy")) assert.deepEqual(statements(p.inputs.policy)[0]!.Condition, { Bool: { "aws:SecureTransport": "false" } }, `${p.name} TLS only`);
      const redrive = JSON.parse(queue.inputs.redrivePolicy);
      assert.deepEqual(redrive, { deadLetterTargetArn: `arn:${e.partition}:sqs:${e.region}:${ACCOUNT}:${prefix}-runs-dlq`, maxReceiveCount: 1000 });
      assert.ok(queue.inputs.visibilityTimeoutSeconds >= 6 * fn().inputs.timeout);
    });

    it("polls both run queues with partial batch failures and a maximum concurrency", () => {
      const mappings = all(r, "aws:lambda/eventSourceMapping:EventSourceMapping");
      assert.deepEqual(mappings.map((m) => m.inputs.eventSourceArn).sort(), [`${prefix}-backfill`, `${prefix}-runs`].map((n) => `arn:${e.partition}:sqs:${e.region}:${ACCOUNT}:${n}`));
      for (const m of mappings) {
        assert.deepEqual(m.inputs.functionResponseTypes, ["ReportBatchItemFailures"]);
        assert.equal(m.inputs.scalingConfig.maximumConcurrency, 2);
        assert.equal(m.inputs.functionName, fn().outputs.arn);
      }
      assert.ok(fn().inputs.reservedConcurrentExecutions >= 2 * mappings.length, "reserved concurrency covers both mappings (no throttled batches)");
    });

    it("sets exactly the Lambda environment trigger/env.ts reads, with this stack's values", () => {
      const vars = fn().inputs.environment.variables as Record<string, string>;
      for (const name of Object.keys(vars)) assert.ok((TRIGGER_ENV_NAMES as readonly string[]).includes(name), `${name} is not read by the trigger`);
      for (const name of TRIGGER_REQUIRED_ENV_NAMES) assert.ok(name in vars, `${name} is missing`);
      const cfg = readTriggerEnv(vars);
      assert.equal(cfg.stackName, e.stack);
      assert.equal(cfg.dataBucket, bucketName());
      assert.equal(cfg.inputPrefix, e.prefixes.input);
      assert.equal(cfg.outputPrefix, e.prefixes.output);
      assert.equal(cfg.requestsPrefix, e.prefixes.requests);
      assert.equal(cfg.jobNamePrefix, prefix);
      assert.equal(cfg.modelName, r.outputs.modelName);
      assert.equal(cfg.modelName, one(r, "aws:sagemaker/model:Model").outputs.name);
      assert.deepEqual(cfg.cascadeSteps, e.cascadeSteps);
      assert.equal(cfg.instanceType, e.instanceType);
      assert.equal(cfg.s3ForcePathStyle, false);
      assert.equal(cfg.maxConcurrentJobs, e.stack === "prod" ? 2 : 1);
      assert.equal(cfg.operationalReserve, 1);
      assert.equal(cfg.inputWaitMinutes, 30);
      assert.equal(cfg.maxWaitMinutes.operational, 24 * 60);
      assert.deepEqual(cfg.queues, { operational: r.outputs.operationalQueueUrl, backfill: r.outputs.backfillQueueUrl, deadLetter: r.outputs.deadLetterQueueUrl });
    });

    it("deploys the bundled dispatcher on nodejs22.x with reserved concurrency", () => {
      const f = fn();
      assert.equal(f.inputs.runtime, "nodejs22.x");
      assert.equal(f.inputs.handler, "index.handler");
      assert.ok(f.inputs.reservedConcurrentExecutions >= 1);
      assert.equal(f.inputs.loggingConfig.logGroup, `/aws/lambda/${prefix}-trigger`);
      const logGroup = one(r, "aws:cloudwatch/logGroup:LogGroup");
      assert.ok(f.dependsOn.includes(logGroup.urn), "the function waits for its log group");
      assert.ok(f.dependsOn.includes(one(r, "aws:iam/rolePolicy:RolePolicy", "-trigger-role-policy").urn), "the function waits for its permissions");
      assert.ok(logGroup.inputs.retentionInDays > 0);
      // The archive holds one CommonJS file that exports the handler.
      const files = f.inputs.code.__archive.assets as Record<string, { __asset: { text: string } }>;
      assert.deepEqual(Object.keys(files), ["index.js"]);
      const dir = mkdtempSync(join(tmpdir(), "fuxi-bundle-"));
      try {
        writeFileSync(join(dir, "index.js"), files["index.js"]!.__asset.text);
        const mod = require(join(dir, "index.js"));
        assert.equal(typeof mod.handler, "function");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("keeps the data bucket private, encrypted, versioned, TLS-only, with multipart and request lifecycle rules", () => {
      const pab = one(r, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs;
      for (const k of ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"]) assert.equal(pab[k], true, k);
      assert.equal(one(r, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm, "AES256");
      assert.equal(one(r, "aws:s3/bucketVersioning:BucketVersioning").inputs.versioningConfiguration.status, "Enabled");
      const rules = one(r, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs.rules as any[];
      assert.ok(rules.some((x) => x.status === "Enabled" && x.abortIncompleteMultipartUpload?.daysAfterInitiation >= 1 && x.filter.prefix === ""));
      assert.ok(rules.some((x) => x.status === "Enabled" && x.expiration?.days >= 1 && x.filter.prefix === e.prefixes.requests));
      const [tls] = statements(one(r, "aws:s3/bucketPolicy:BucketPolicy").inputs.policy);
      assert.equal(tls!.Effect, "Deny");
      assert.deepEqual(tls!.Condition, { Bool: { "aws:SecureTransport": "false" } });
      assert.deepEqual(list(tls!.Resource), [bucketArn(), `${bucketArn()}/*`]);
    });

    it("alerts on failed or stopped jobs of this stack, Lambda errors, dead letters, runs not started and an old waiting run", () => {
      const topicArn = String(r.outputs.alertTopicArn);
      const rule = one(r, "aws:cloudwatch/eventRule:EventRule");
      assert.deepEqual(JSON.parse(rule.inputs.eventPattern), {
        source: ["aws.sagemaker"],
        "detail-type": ["SageMaker Transform Job State Change"],
        detail: { TransformJobStatus: ["Failed", "Stopped"], TransformJobName: [{ prefix: `${prefix}-` }] },
      });
      assert.equal(one(r, "aws:cloudwatch/eventTarget:EventTarget").inputs.arn, topicArn);
      const alarms = all(r, "aws:cloudwatch/metricAlarm:MetricAlarm");
      const byMetric = Object.fromEntries(alarms.map((a) => [a.inputs.metricName, a.inputs]));
      assert.deepEqual(byMetric.Errors.dimensions, { FunctionName: `${prefix}-trigger` });
      assert.deepEqual(byMetric.ApproximateNumberOfMessagesVisible.dimensions, { QueueName: `${prefix}-runs-dlq` });
      assert.deepEqual([byMetric.RunsNotStarted.namespace, byMetric.RunsNotStarted.dimensions], ["FuXi", { Stack: e.stack }]);
      assert.deepEqual([byMetric.ApproximateAgeOfOldestMessage.dimensions, byMetric.ApproximateAgeOfOldestMessage.threshold], [{ QueueName: `${prefix}-runs` }, 7200]);
      for (const a of alarms) assert.deepEqual(a.inputs.alarmActions, [topicArn]);
      const policy = statements(one(r, "aws:sns/topicPolicy:TopicPolicy").inputs.policy);
      const fromEvents = policy.find((s) => (s.Principal as { Service: string }).Service === "events.amazonaws.com")!;
      assert.equal(fromEvents.Condition?.ArnEquals?.["aws:SourceArn"], `arn:${e.partition}:events:${e.region}:${ACCOUNT}:rule/${rule.outputs.name}`);
      const fromAlarms = policy.find((s) => (s.Principal as { Service: string }).Service === "cloudwatch.amazonaws.com")!;
      assert.equal(fromAlarms.Condition?.ArnLike?.["aws:SourceArn"], `arn:${e.partition}:cloudwatch:${e.region}:${ACCOUNT}:alarm:${prefix}-*`);
      for (const a of alarms) assert.ok(a.inputs.name.startsWith(`${prefix}-`), "alarm names match the topic policy");
      const subs = all(r, "aws:sns/topicSubscription:TopicSubscription");
      assert.deepEqual(subs.map((s) => s.inputs.endpoint).sort(), [...e.emails].sort());
      for (const s of subs) assert.equal(s.inputs.protocol, "email");
    });

    it("exports the bucket, URIs, image, model, function, topic and the commands that start a run", () => {
      const o = r.outputs;
      assert.deepEqual(Object.keys(o).sort(), ["alertTopicArn", "backfillQueueUrl", "costModel", "dataBucket", "deadLetterQueueUrl", "functionName", "imageUri", "inputPrefix", "inputUri", "jobNamePrefix", "modelName", "operationalQueueUrl", "outputPrefix", "outputUri", "requestsPrefix", "startRunCommands", "steadyStateStorage"]);
      assert.equal((o.costModel as { instanceType: string }).instanceType, e.instanceType);
      assert.equal(o.operationalQueueUrl, `https://sqs.${e.region}.${e.dnsSuffix}/${ACCOUNT}/${prefix}-runs`);
      assert.equal(o.inputUri, `s3://${bucketName()}/${e.prefixes.input}`);
      assert.equal(o.outputUri, `s3://${bucketName()}/${e.prefixes.output}`);
      assert.equal(o.functionName, `${prefix}-trigger`);
      assert.deepEqual(o.startRunCommands, [
        `aws s3 cp ./fuxi_input.nc "s3://${bucketName()}/${e.prefixes.input}$RUN_ID/fuxi_input.nc" --region ${e.region}`,
        `echo -n | aws s3 cp - "s3://${bucketName()}/${e.prefixes.input}$RUN_ID/_SUCCESS" --region ${e.region}`,
      ]);
    });
  });
}

const DEV: Expect = {
  stack: "dev", partition: "aws-cn", region: "cn-northwest-1", dnsSuffix: "amazonaws.com.cn",
  prefixes: { input: "input/", output: "output/", requests: "requests/" },
  model: { bucket: "fuxi-model-weights-cn", key: "fuxi/v1/", kind: "prefix" },
  cascadeSteps: [20], instanceType: "ml.g4dn.xlarge", emails: [],
};
const PROD: Expect = {
  ...DEV, stack: "prod",
  model: { bucket: "fuxi-model-weights-cn", key: "fuxi/v1/", kind: "prefix" },
  cascadeSteps: [20, 20, 20], instanceType: "ml.g5.2xlarge", emails: ["forecast-oncall@example.com"],
};

/** Pulumi.prod.yaml holds no addresses (personal data); a real prod stack sets them with `pulumi config set --secret`. */
const PROD_WITH_SECRET_ALERTS = { stack: "prod" as const, config: { "fuxi:alerts": { emails: PROD.emails } }, secretKeys: ["fuxi:alerts"] };
/** The .tar.gz artifact mode (prod used it until bench:startup showed the prefix mode starts faster). */
const ARCHIVE = { "fuxi:model": { artifacts: "s3://fuxi-model-weights-cn/fuxi/v1.tar.gz" } };

describe("Pulumi program under mocks", () => {
  checkStack("dev stack (Pulumi.dev.yaml, aws-cn)", () => run({ stack: "dev" }), DEV);
  checkStack("prod stack (Pulumi.prod.yaml, aws-cn, alerts stored as a secret)", () => run(PROD_WITH_SECRET_ALERTS), PROD);
  checkStack("dev stack in a global region (us-east-1, custom prefixes)", () => run({
    stack: "dev",
    region: "us-east-1",
    config: { "fuxi:prefixes": { input: "runs/in/", output: "runs/out/", requests: "runs/req/" } },
  }), { ...DEV, partition: "aws", region: "us-east-1", dnsSuffix: "amazonaws.com", prefixes: { input: "runs/in/", output: "runs/out/", requests: "runs/req/" } });

  it("keeps alert e-mails secret when fuxi:alerts is a secret", async function () {
    this.timeout(120_000);
    const r = await run(PROD_WITH_SECRET_ALERTS);
    const subs = all(r, "aws:sns/topicSubscription:TopicSubscription");
    assert.equal(subs.length, 1);
    assert.deepEqual(subs[0]!.secretInputs, ["endpoint"]);
    const plain = await runProgramUnderMocks({ ...PROD_WITH_SECRET_ALERTS, secretKeys: [] });
    assert.deepEqual(all(plain, "aws:sns/topicSubscription:TopicSubscription")[0]!.secretInputs, []);
  });

  it("adopts an existing data bucket without creating or reconfiguring one", async function () {
    this.timeout(120_000);
    const r = await runProgramUnderMocks({ stack: "dev", config: { "fuxi:dataBucket": { existingName: "team-fuxi-data" } }, existingBuckets: { "team-fuxi-data": wellKeptBucket("team-fuxi-data") } });
    assert.ok(all(r, "aws:s3/bucket:Bucket").every((b) => b.external), "the adopted bucket is read, never created");
    const counts: Record<string, number> = {};
    for (const x of r.resources) counts[x.type] = (counts[x.type] ?? 0) + 1;
    assert.deepEqual(counts, expectedCounts(0, false));
    assert.equal(r.outputs.dataBucket, "team-fuxi-data");
    assert.equal(one(r, "aws:s3/bucketNotification:BucketNotification").inputs.bucket, "team-fuxi-data");
    const queuePolicy = JSON.parse(one(r, "aws:sqs/queuePolicy:QueuePolicy", "-operational-policy").inputs.policy);
    assert.equal(queuePolicy.Statement[1].Condition.ArnEquals["aws:SourceArn"], "arn:aws-cn:s3:::team-fuxi-data");
    const policy = one(r, "aws:iam/rolePolicy:RolePolicy", "-sagemaker-policy").inputs.policy as string;
    assert.ok(policy.includes("arn:aws-cn:s3:::team-fuxi-data/input/*"));
  });

  it("fails before creating anything when the config is invalid, listing every bad key", async function () {
    this.timeout(120_000);
    await assert.rejects(
      runProgramUnderMocks({
        stack: "prod",
        config: {
          "fuxi:transform": { instanceType: "ml.m5.large", maxRetries: 5 },
          "fuxi:prefixes": { input: "data/", output: "data/forecasts/" },
        },
      }),
      (err: unknown) => {
        assert.ok(err instanceof MockProgramError);
        assert.match(err.message, /^invalid stack configuration \(3 problems\):/);
        assert.match(err.message, /fuxi:transform\.instanceType: "ml\.m5\.large" has no GPU; expected ml\.g4dn\.\*, ml\.g5\.\*, ml\.g6\.\*, ml\.p3\.\*/);
        assert.match(err.message, /fuxi:transform\.maxRetries: 5 is out of range/);
        assert.match(err.message, /fuxi:prefixes\.output: "data\/forecasts\/" overlaps prefixes\.input "data\/"/);
        return true;
      },
    );
  });
  describe("fuxi:model.artifacts must exist (checked at preview with aws.s3.getObjects)", function () {
    this.timeout(120_000);

    it("fails for a prefix without fuxi-models.json, naming the upload command", async () => {
      await assert.rejects(
        runProgramUnderMocks({ stack: "dev", s3Objects: ["s3://fuxi-model-weights-cn/fuxi/v1/short.onnx", "s3://fuxi-model-weights-cn/fuxi/v1/fuxi-models.json.bak"] }),
        (err: unknown) => {
          assert.ok(err instanceof MockProgramError);
          assert.match(err.message, /fuxi:model\.artifacts: s3:\/\/fuxi-model-weights-cn\/fuxi\/v1\/ has no fuxi-models\.json/);
          assert.match(err.message, /npm run models -- upload <folder with the six FuXi files> s3:\/\/fuxi-model-weights-cn\/fuxi\/v1\//);
          return true;
        },
      );
    });

    it("fails for a missing archive, naming the upload command with --archive", async () => {
      await assert.rejects(runProgramUnderMocks({ stack: "prod", config: ARCHIVE, s3Objects: ["s3://fuxi-model-weights-cn/fuxi/v1.tar.gz.partial"] }), (err: unknown) => {
        assert.ok(err instanceof MockProgramError);
        assert.match(err.message, /s3:\/\/fuxi-model-weights-cn\/fuxi\/v1\.tar\.gz does not exist/);
        assert.match(err.message, /npm run models -- upload <folder with the six FuXi files> s3:\/\/fuxi-model-weights-cn\/fuxi\/ --archive v1\.tar\.gz/);
        return true;
      });
    });

    it("passes when fuxi-models.json (or the archive) is there", async () => {
      const dev = await runProgramUnderMocks({ stack: "dev", s3Objects: ["s3://fuxi-model-weights-cn/fuxi/v1/fuxi-models.json"] });
      assert.ok(dev.resources.length > 10);
      const prod = await runProgramUnderMocks({ stack: "prod", s3Objects: ["s3://fuxi-model-weights-cn/fuxi/v1/fuxi-models.json"] });
      assert.ok(prod.resources.length > 10);
      const archive = await runProgramUnderMocks({ stack: "prod", config: ARCHIVE, s3Objects: ["s3://fuxi-model-weights-cn/fuxi/v1.tar.gz"] });
      assert.ok(archive.resources.length > 10);
    });
  });
});
