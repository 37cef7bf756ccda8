/** The program's pure parts: the partition table, policy builders, environments, the image tag and the mocks. */
import { strict as assert } from "node:assert";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { transformJobFailurePattern } from "../components/alerts";
import { MAX_MODEL_ENVIRONMENT_ENTRIES, runtimeEnvironment } from "../components/forecastModel";
import { contextTag } from "../components/inferenceImage";
import { arn, partitionFacts, partitionOfRegion, s3Arn } from "../components/partition";
import { sageMakerExecutionPolicy, triggerFunctionPolicy } from "../components/roles";
import { triggerEnvironment } from "../components/trigger";
import { readTriggerEnv } from "../trigger/env";
import { readConfig } from "../runtime/src/config";
import { createMocks, plainInputs } from "../tools/mock-program-mocks";

const CN = { partition: "aws-cn", region: "cn-northwest-1", accountId: "111122223333", facts: partitionFacts("aws-cn") };
const PREFIXES = { input: "input/", output: "output/", requests: "requests/" };
const RUNTIME = { providers: ["cuda"], allowCpu: false, keepAllStages: false, prefetchNextStage: false, stepsInFlight: 2, logLevel: "info" };

describe("partition table (components/partition.ts)", () => {
  it("maps regions to partitions and rejects unsupported ones by name", () => {
    assert.equal(partitionOfRegion("cn-north-1"), "aws-cn");
    assert.equal(partitionOfRegion("cn-northwest-1"), "aws-cn");
    assert.equal(partitionOfRegion("us-east-1"), "aws");
    assert.equal(partitionOfRegion("ap-southeast-2"), "aws");
    assert.throws(() => partitionOfRegion("us-gov-west-1"), /aws:region: "us-gov-west-1" is in a partition this project does not support/);
    assert.throws(() => partitionOfRegion("Ningxia"), /aws:region: "Ningxia" is not an AWS region name/);
    assert.throws(() => partitionFacts("aws-iso"), /unsupported AWS partition "aws-iso"/);
  });

  it("holds the China facts: DNS suffix, DLC account, principals", () => {
    const cn = partitionFacts("aws-cn");
    assert.equal(cn.dnsSuffix, "amazonaws.com.cn");
    assert.equal(cn.deepLearningContainersAccount, "727897471807");
    assert.deepEqual(cn.principals, {
      lambda: "lambda.amazonaws.com",
      sagemaker: "sagemaker.amazonaws.com",
      s3: "s3.amazonaws.com",
      events: "events.amazonaws.com",
      cloudwatch: "cloudwatch.amazonaws.com",
    });
    assert.equal(partitionFacts("aws").dnsSuffix, "amazonaws.com");
  });

  it("builds ARNs with the partition", () => {
    assert.equal(arn(CN, "sqs", "q"), "arn:aws-cn:sqs:cn-northwest-1:111122223333:q");
    assert.equal(s3Arn("aws-cn", "b"), "arn:aws-cn:s3:::b");
    assert.equal(s3Arn("aws", "b", "input/*"), "arn:aws:s3:::b/input/*");
  });
});

describe("policy builders (components/roles.ts)", () => {
  const base = { ctx: CN, bucket: "data", prefixes: PREFIXES, repositoryArn: "arn:aws-cn:ecr:cn-northwest-1:111122223333:repository/r", jobNamePrefix: "fuxi-dev" };

  it("reads an archive by its exact key and lists nothing in the model bucket", () => {
    const doc = sageMakerExecutionPolicy({ ...base, model: { bucket: "weights", key: "fuxi/v1.tar.gz", kind: "archive" } });
    const model = doc.Statement.find((s) => s.Sid === "ReadModelArtifacts")!;
    assert.equal(model.Resource, "arn:aws-cn:s3:::weights/fuxi/v1.tar.gz");
    assert.equal(doc.Statement.find((s) => s.Sid === "ListModelBucket"), undefined);
  });

  it("reads and lists a model prefix in a different bucket", () => {
    const doc = sageMakerExecutionPolicy({ ...base, model: { bucket: "weights", key: "fuxi/", kind: "prefix" } });
    assert.equal(doc.Statement.find((s) => s.Sid === "ReadModelArtifacts")!.Resource, "arn:aws-cn:s3:::weights/fuxi/*");
    const list = doc.Statement.find((s) => s.Sid === "ListModelBucket")!;
    assert.equal(list.Resource, "arn:aws-cn:s3:::weights");
    assert.deepEqual(list.Action, ["s3:ListBucket"]);
  });

  it("lists the data bucket once when the weights live in it too", () => {
    const doc = sageMakerExecutionPolicy({ ...base, model: { bucket: "data", key: "weights/", kind: "prefix" } });
    const lists = doc.Statement.filter((s) => s.Action.includes("s3:ListBucket"));
    assert.deepEqual(lists.map((s) => s.Resource), ["arn:aws-cn:s3:::data"]);
  });

  it("trigger: jobs only on the stack's model and instance type, named by the lower-cased prefix", () => {
    const modelArn = "arn:aws-cn:sagemaker:cn-northwest-1:111122223333:model/fuxi-dev-model-1";
    const doc = triggerFunctionPolicy({ ctx: CN, bucket: "data", prefixes: PREFIXES, jobNamePrefix: "Fuxi-Dev", modelArn, instanceType: "ml.g5.2xlarge", logGroupArn: "l", runQueueArns: ["q1", "q2"], deadLetterQueueArn: "d" });
    const start = doc.Statement.find((s) => s.Sid === "StartTransformJobsOnTheModel")!;
    assert.deepEqual(start.Action, ["sagemaker:CreateTransformJob"]);
    assert.equal(start.Resource, "arn:aws-cn:sagemaker:cn-northwest-1:111122223333:transform-job/fuxi-dev-*");
    assert.deepEqual(start.Condition, {
      ArnEquals: { "sagemaker:ModelArn": modelArn },
      "ForAllValues:StringEquals": { "sagemaker:InstanceTypes": ["ml.g5.2xlarge"] },
      Null: { "sagemaker:InstanceTypes": "false" },
    });
    assert.ok(!doc.Statement.some((s) => s.Action.includes("iam:PassRole")));
    // Admission reads only this stack's jobs; counting them needs ListTransformJobs, which has no resource type.
    assert.equal(doc.Statement.find((s) => s.Action.includes("sagemaker:DescribeTransformJob"))!.Resource, "arn:aws-cn:sagemaker:cn-northwest-1:111122223333:transform-job/fuxi-dev-*");
    assert.equal(doc.Statement.find((s) => s.Action.includes("sagemaker:ListTransformJobs"))!.Resource, "*");
  });
});

describe("environments", () => {
  it("model: FUXI_MODEL_S3_URI only for a prefix; at most 16 entries", () => {
    const lanes = { bucket: "data", inputPrefix: "input/", outputPrefix: "output/" };
    const prefixEnv = runtimeEnvironment({ bucket: "wts", key: "fuxi/", kind: "prefix" }, { ...RUNTIME, intraOpThreads: 4 }, lanes, { instanceType: "ml.g5.2xlarge", instanceCount: 2 });
    assert.deepEqual(prefixEnv, {
      FUXI_DATA_BUCKET: "data", FUXI_INPUT_PREFIX: "input/", FUXI_OUTPUT_PREFIX: "output/",
      FUXI_INSTANCE_TYPE: "ml.g5.2xlarge", FUXI_INSTANCE_COUNT: "2",
      FUXI_PROVIDERS: "cuda", FUXI_ALLOW_CPU: "false", FUXI_KEEP_ALL_STAGES: "false", FUXI_STEPS_IN_FLIGHT: "2", LOG_LEVEL: "info",
      FUXI_MODEL_S3_URI: "s3://wts/fuxi/", FUXI_INTRA_OP_THREADS: "4",
    });
    assert.equal(runtimeEnvironment({ bucket: "w", key: "m.tar.gz", kind: "archive" }, RUNTIME, lanes, { instanceType: "ml.g4dn.xlarge", instanceCount: 1 }).FUXI_MODEL_S3_URI, undefined);
    // What the component sets is what the runtime accepts.
    assert.deepEqual(readConfig(prefixEnv).lanes, lanes);
    assert.ok(Object.keys(prefixEnv).length <= MAX_MODEL_ENVIRONMENT_ENTRIES);
    const prefetching = runtimeEnvironment({ bucket: "wts", key: "fuxi/", kind: "prefix" }, { ...RUNTIME, prefetchNextStage: true }, lanes, { instanceType: "ml.p4d.24xlarge", instanceCount: 1 });
    assert.equal(prefetching.FUXI_PREFETCH_NEXT_STAGE, "true");
    assert.equal(readConfig(prefetching).prefetchNextStage, true);
    assert.equal((prefixEnv as Record<string, string>).FUXI_PREFETCH_NEXT_STAGE, undefined, "unset unless asked for (the default needs no entry)");
  });

  it("trigger: what components/trigger.ts sets is what trigger/env.ts accepts", () => {
    const env = triggerEnvironment({
      stack: "dev", prefixes: PREFIXES, jobNamePrefix: "fuxi-dev", cascadeSteps: [20, 20, 34], compression: "gzip",
      instanceType: "ml.g5.2xlarge", instanceCount: 2, invocationTimeoutSeconds: 3600, maxRetries: 0,
      maxConcurrentJobs: 2, operationalReserve: 1, inputWaitMinutes: 30, maxWaitHours: 24, backfillMaxWaitHours: 312, retrySeconds: 60, functionTimeoutSeconds: 60,
    }, "data-bucket", "fuxi-dev-model-1", {
      operational: "https://sqs.cn-northwest-1.amazonaws.com.cn/111122223333/fuxi-dev-runs",
      backfill: "https://sqs.cn-northwest-1.amazonaws.com.cn/111122223333/fuxi-dev-backfill",
      deadLetter: "https://sqs.cn-northwest-1.amazonaws.com.cn/111122223333/fuxi-dev-runs-dlq",
    });
    const cfg = readTriggerEnv(env);
    assert.deepEqual(cfg.cascadeSteps, [20, 20, 34]);
    assert.equal(cfg.outputCompression, "gzip");
    assert.equal(cfg.instanceCount, 2);
    assert.equal(cfg.maxConcurrentJobs, 2);
    assert.deepEqual(cfg.maxWaitMinutes, { operational: 1440, backfill: 18720 });
    assert.equal(cfg.admissionGraceSeconds, 120);
    assert.equal(cfg.invocationMaxRetries, 0);
    assert.equal(cfg.transformAmiVersion, undefined);
    assert.equal("TRANSFORM_AMI_VERSION" in env, false);
  });

  it("alerts: matches only this stack's job names", () => {
    assert.deepEqual(transformJobFailurePattern("fuxi-dev").detail.TransformJobName, [{ prefix: "fuxi-dev-" }]);
  });
});

describe("image content tag (components/inferenceImage.ts)", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "fuxi-context-"));
    writeFileSync(join(dir, "Dockerfile"), "FROM scratch\n");
    mkdirSync(join(dir, "src"));
    writeFileSync(join(dir, "src", "main.ts"), "export {};\n");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("is stable for the same sources and settings, and changes with either", () => {
    const settings = { platform: "linux/amd64", baseImage: "b:1" };
    const tag = contextTag(dir, settings);
    assert.match(tag, /^src-[0-9a-f]{16}$/);
    assert.equal(contextTag(dir, settings), tag);
    assert.notEqual(contextTag(dir, { ...settings, baseImage: "b:2" }), tag);
    writeFileSync(join(dir, "src", "main.ts"), "export const x = 1;\n");
    assert.notEqual(contextTag(dir, settings), tag);
  });

  it("ignores node_modules and dist (never in the image)", () => {
    const tag = contextTag(dir, {});
    mkdirSync(join(dir, "node_modules"));
    writeFileSync(join(dir, "node_modules", "x.js"), "1");
    mkdirSync(join(dir, "dist"));
    writeFileSync(join(dir, "dist", "main.js"), "1");
    assert.equal(contextTag(dir, {}), tag);
  });
});

describe("program mocks (tools/mock-program-mocks.ts)", () => {
  const mocks = createMocks({ partition: "aws-cn", region: "cn-northwest-1", account: "111122223333", dnsSuffix: "amazonaws.com.cn" });

  it("answers the program's invokes and throws on any other token", async () => {
    const p = (await mocks.call({ token: "aws:index/getPartition:getPartition", inputs: {} })) as Record<string, string>;
    assert.equal(p.partition, "aws-cn");
    assert.equal(p.dnsSuffix, "amazonaws.com.cn");
    assert.throws(() => mocks.call({ token: "aws:s3/getBucket:getBucket", inputs: {} }), /no mock for invoke aws:s3\/getBucket:getBucket/);
  });

  it("computes names and ARNs the way the provider does", async () => {
    const bucket = await mocks.newResource({ type: "aws:s3/bucket:Bucket", name: "fuxi-dev-data", inputs: {}, custom: true });
    assert.match(bucket.state.bucket, /^fuxi-dev-data-[0-9a-f]{7}$/);
    assert.equal(bucket.state.arn, `arn:aws-cn:s3:::${bucket.state.bucket}`);
    const image = await mocks.newResource({ type: "docker:index/image:Image", name: "i", inputs: { imageName: "1.dkr.ecr.cn-northwest-1.amazonaws.com.cn/r:src-1" }, custom: true });
    assert.match(image.state.repoDigest, /^1\.dkr\.ecr\.cn-northwest-1\.amazonaws\.com\.cn\/r@sha256:[0-9a-f]{64}$/);
  });

  it("turns wire-format secrets into plain values and reports their paths", () => {
    const secrets: string[] = [];
    const plain = plainInputs({ a: { b: { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", value: "pw" } }, c: [1] }, secrets);
    assert.deepEqual(plain, { a: { b: "pw" }, c: [1] });
    assert.deepEqual(secrets, ["a.b"]);
  });
});
