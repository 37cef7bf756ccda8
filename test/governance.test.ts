import { strict as assert } from "node:assert";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { foreignNotifications } from "../components/dataBucket";
import { runProgramUnderMocks, wellKeptBucket, type MockedResource, type MockRunResult } from "../tools/mock-program";

const ROOT = join(__dirname, "..");

/** AWS name limits of the resources the program names (explicitly or by autoname). */
const NAME_LIMITS: { type: string; prop: string; max: number; pattern?: RegExp; where: string }[] = [
  { type: "aws:s3/bucket:Bucket", prop: "bucket", max: 63, pattern: /^[a-z0-9][a-z0-9.-]*[a-z0-9]$/, where: "S3 bucket naming rules" },
  { type: "aws:iam/role:Role", prop: "name", max: 64, where: "IAM role name" },
  { type: "aws:lambda/function:Function", prop: "name", max: 64, where: "Lambda FunctionName" },
  { type: "aws:cloudwatch/logGroup:LogGroup", prop: "name", max: 512, where: "CloudWatch Logs group name" },
  { type: "aws:sqs/queue:Queue", prop: "name", max: 80, where: "SQS QueueName" },
  { type: "aws:sns/topic:Topic", prop: "name", max: 256, where: "SNS topic name" },
  { type: "aws:cloudwatch/eventRule:EventRule", prop: "name", max: 64, where: "EventBridge rule name" },
  { type: "aws:cloudwatch/metricAlarm:MetricAlarm", prop: "name", max: 255, where: "CloudWatch AlarmName" },
  { type: "aws:ecr/repository:Repository", prop: "name", max: 256, pattern: /^[a-z0-9][a-z0-9._/-]*$/, where: "ECR repository name" },
  { type: "aws:sagemaker/model:Model", prop: "name", max: 63, pattern: /^[a-zA-Z0-9](-*[a-zA-Z0-9])*$/, where: "SageMaker ModelName" },
];

function checkNames(r: MockRunResult): string[] {
  const problems: string[] = [];
  let checked = 0;
  for (const limit of NAME_LIMITS) {
    const found = r.resources.filter((x) => x.type === limit.type);
    assert.ok(found.length > 0, `the program has no ${limit.type} any more: update NAME_LIMITS`);
    for (const x of found) {
      const name = String(x.outputs[limit.prop]);
      checked++;
      if (name.length > limit.max) problems.push(`${x.type} ${x.name}: ${limit.prop} ${JSON.stringify(name)} has ${name.length} characters (${limit.where}: at most ${limit.max})`);
      if (limit.pattern && !limit.pattern.test(name)) problems.push(`${x.type} ${x.name}: ${limit.prop} ${JSON.stringify(name)} breaks the ${limit.where}`);
    }
  }
  assert.ok(checked >= NAME_LIMITS.length);
  return problems;
}

const LONGEST_PREFIX = "a123456789-b123456789-c123456789-d1234567"; // 41
const EXTREMES = [
  { what: "the longest accepted job-name prefix (40)", prefix: LONGEST_PREFIX.slice(0, 40).replace(/-$/, "x") },
  { what: "a one-character prefix", prefix: "x" },
];

describe("names fit every AWS limit for every accepted config", function () {
  this.timeout(180_000);
  it("the prefix used is at the config's limits", () => assert.deepEqual(EXTREMES.map((e) => e.prefix.length), [40, 1]));
  for (const e of EXTREMES) {
    for (const region of ["cn-northwest-1", "us-east-1"]) {
      it(`${e.what}, ${region}`, async () => {
        const r = await runProgramUnderMocks({ stack: "prod", region, config: { "fuxi:transform": { instanceType: "ml.g5.2xlarge", jobNamePrefix: e.prefix } } });
        assert.deepEqual(checkNames(r), []);
      });
    }
  }
  it("the check can fail: an autonamed EventBridge rule from a 40-character prefix would not fit", () => {
    const fake = { resources: NAME_LIMITS.map((l) => ({ type: l.type, name: "n", outputs: { [l.prop]: l.type.includes("eventRule") ? `${"a".repeat(40)}-alerts-transform-failed-1234567` : "ok-name" } }) as unknown as MockedResource), outputs: {} };
    assert.match(checkNames(fake).join("\n"), /EventBridge rule name: at most 64/);
  });
});

describe("data safety", function () {
  this.timeout(180_000);
  const stateful = ["aws:s3/bucket:Bucket", "aws:cloudwatch/logGroup:LogGroup", "aws:sns/topicSubscription:TopicSubscription", "aws:kms/key:Key", "aws:ecr/repository:Repository", "aws:sqs/queue:Queue", "aws:sns/topic:Topic"];
  const urns = (r: MockRunResult) => r.resources.filter((x) => stateful.includes(x.type)).map((x) => x.urn.replace(/^urn:pulumi:\w+::/, "")).sort();
  const bucketOf = (r: MockRunResult) => r.resources.find((x) => x.type === "aws:s3/bucket:Bucket")!;
  const alerts = { "fuxi:alerts": { emails: ["someone@example.org"] } };

  it("renaming the job-name prefix keeps every stateful resource's logical name (URN)", async () => {
    const before = await runProgramUnderMocks({ stack: "prod", config: alerts, secretKeys: ["fuxi:alerts"] });
    const after = await runProgramUnderMocks({ stack: "prod", config: { ...alerts, "fuxi:transform": { instanceType: "ml.g5.2xlarge", jobNamePrefix: "weather-team-7" } }, secretKeys: ["fuxi:alerts"] });
    assert.ok(urns(before).length >= stateful.length);
    assert.deepEqual(urns(after), urns(before));
    // The created bucket's physical name is fixed when it is created: its prefix is ignored afterwards.
    assert.deepEqual(bucketOf(after).options!.ignoreChanges, ["bucketPrefix"]);
  });

  it("components carry an alias to the prefix-derived names stacks were deployed with", async () => {
    const r = await runProgramUnderMocks({ stack: "dev" });
    const components = r.resources.filter((x) => !x.custom && x.type.startsWith("fuxi:") && x.parent?.endsWith("pulumi:pulumi:Stack::fuxi-sagemaker-dev"));
    assert.equal(components.length, 6);
    for (const c of components) assert.ok(c.options!.aliases.some((a) => a.includes(`name=fuxi-dev-${c.name}`)), `${c.type} ${c.name}: ${c.options!.aliases}`);
  });

  it("prod protects and retains the created bucket; dev (forceDestroy) does neither; both are config", async () => {
    const prod = bucketOf(await runProgramUnderMocks({ stack: "prod" }));
    assert.deepEqual([prod.options!.protect, prod.options!.retainOnDelete], [true, true]);
    assert.equal(prod.inputs.forceDestroy, false);
    const dev = bucketOf(await runProgramUnderMocks({ stack: "dev" }));
    assert.deepEqual([dev.options!.protect, dev.options!.retainOnDelete], [false, false]);
    const kept = bucketOf(await runProgramUnderMocks({ stack: "dev", config: { "fuxi:dataBucket": { forceDestroy: false } } }));
    assert.equal(kept.options!.retainOnDelete, true, "retainOnDelete defaults to true unless forceDestroy");
  });

  describe("adopting a bucket does not silently replace its notification configuration", () => {
    const adopt = (notification: Record<string, unknown>, replaceNotifications?: boolean) =>
      runProgramUnderMocks({
        stack: "dev",
        config: { "fuxi:dataBucket": { existingName: "team-fuxi-data", ...(replaceNotifications === undefined ? {} : { replaceNotifications }) } },
        existingBuckets: { "team-fuxi-data": { ...wellKeptBucket("team-fuxi-data"), notification } },
      });

    it("refuses rules the stack did not create, naming them and the way out", async () => {
      await assert.rejects(adopt({ lambdaFunctions: [{ id: "etl-ingest", lambdaFunctionArn: "arn:aws-cn:lambda:cn-northwest-1:123456789012:function:etl" }], eventbridge: true }), (e: Error) => {
        assert.match(e.message, /bucket "team-fuxi-data" has notification rules this stack did not create \(Lambda rule "etl-ingest", EventBridge delivery\)/);
        assert.match(e.message, /fuxi:dataBucket\.replaceNotifications: true/);
        return true;
      });
    });

    it("accepts its own rule, an empty configuration, or the user's explicit replaceNotifications", async () => {
      await adopt({ lambdaFunctions: [{ id: "fuxi-dev-trigger-input-marker" }] });
      await adopt({});
      const r = await adopt({ queues: [{ id: "someone-elses" }] }, true);
      assert.ok(r.resources.some((x) => x.type === "aws:s3/bucketNotification:BucketNotification"));
    });

    it("foreignNotifications lists every kind", () => {
      assert.deepEqual(foreignNotifications({ lambdaFunctions: [{ id: "p-1" }, { id: "x" }], queues: [{}], topics: [{ id: "t" }], eventbridge: false }, "p-"), ['Lambda rule "x"', 'SQS rule "(no id)"', 'SNS rule "t"']);
    });
  });
});

describe("personal data", () => {
  const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
  const files = [
    ...readdirSync(ROOT).filter((f) => /^Pulumi\..*\.ya?ml$/.test(f)),
    ...readdirSync(join(ROOT, "plans")).filter((f) => f.endsWith(".md")).map((f) => join("plans", f)),
  ];

  it("no e-mail address in a committed stack file or plan", () => {
    assert.ok(files.length >= 4, files.join(", "));
    for (const f of files) {
      const text = readFileSync(join(ROOT, f), "utf8").replace(/^\s*#.*$/gm, "");
      assert.deepEqual(text.match(EMAIL) ?? [], [], `${f} carries an e-mail address; store it with pulumi config set --secret`);
    }
  });

  it("a secret alert address reaches the subscription as a secret", async function () {
    this.timeout(120_000);
    const r = await runProgramUnderMocks({ stack: "prod", config: { "fuxi:alerts": { emails: ["oncall@example.org"] } }, secretKeys: ["fuxi:alerts"] });
    const subs = r.resources.filter((x) => x.type === "aws:sns/topicSubscription:TopicSubscription");
    assert.deepEqual(subs.map((s) => s.secretInputs), [["endpoint"]]);
  });
});
