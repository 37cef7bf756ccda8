import { strict as assert } from "node:assert";
import { defaultBaseImage, parseStackConfig, StackConfigError } from "../config";
import { prefixesOverlap } from "../runtime/src/contract";
import { stackConfig } from "../tools/mock-program-mocks";

const MODEL = JSON.stringify({ artifacts: "s3://fuxi-weights/fuxi/" });

/** Parse with the real dev stack file plus overrides; return the error's problem lines. */
function problems(overrides: Record<string, unknown>, opts: { region?: string; secretKeys?: string[] } = {}): string[] {
  const raw = stackConfig("dev", overrides);
  try {
    parseStackConfig({ stack: "dev", region: opts.region ?? raw["aws:region"]!, raw, secretKeys: opts.secretKeys });
  } catch (e) {
    assert.ok(e instanceof StackConfigError, `expected StackConfigError, got ${e}`);
    assert.match(e.message, new RegExp(`^invalid stack configuration \\(${e.problems.length} problems?\\):`));
    for (const p of e.problems) assert.ok(e.message.includes(p));
    return e.problems;
  }
  assert.fail("config was accepted");
}

describe("stack config (config.ts)", () => {
  it("accepts the real Pulumi.dev.yaml and applies documented defaults", () => {
    const raw = stackConfig("dev");
    const cfg = parseStackConfig({ stack: "dev", region: raw["aws:region"]!, raw });
    assert.equal(cfg.region, "cn-northwest-1");
    assert.equal(cfg.transform.instanceType, "ml.g4dn.xlarge");
    assert.deepEqual(cfg.forecast.cascadeSteps, [20]);
    assert.equal(cfg.transform.jobNamePrefix, "fuxi-dev");
    assert.deepEqual(cfg.prefixes, { input: "input/", output: "output/", requests: "requests/" });
    assert.deepEqual(cfg.model, { uri: "s3://fuxi-model-weights-cn/fuxi/v1/", bucket: "fuxi-model-weights-cn", key: "fuxi/v1/", kind: "prefix" });
    assert.equal(cfg.image.platform, "linux/amd64");
    assert.equal(cfg.image.context, "runtime");
    assert.equal(cfg.image.baseImage, defaultBaseImage("cn-northwest-1"));
    assert.deepEqual(cfg.runtime.providers, ["cuda"]);
    assert.equal(cfg.dataBucket.existingName, undefined);
  });

  it("accepts the real Pulumi.prod.yaml: the full cascade on a larger GPU from an archive", () => {
    const raw = stackConfig("prod");
    const cfg = parseStackConfig({ stack: "prod", region: raw["aws:region"]!, raw });
    assert.deepEqual(cfg.forecast.cascadeSteps, [20, 20, 20]);
    assert.equal(cfg.transform.instanceType, "ml.g5.2xlarge");
    assert.equal(cfg.model.kind, "prefix", "prod fetches the six files with ranged GETs (faster start-up than a .tar.gz, bench:startup)");
    assert.equal(cfg.model.key, "fuxi/v1/");
    assert.deepEqual(cfg.alerts.emails, [], "alert addresses are personal data: set them as a secret, never in the committed file");
    assert.equal(cfg.dataBucket.protect, true);
    assert.equal(cfg.dataBucket.retainOnDelete, true);
  });

  it("defaults everything but the model artifacts", () => {
    const cfg = parseStackConfig({ stack: "staging", region: "us-east-1", raw: { "fuxi:model": MODEL } });
    assert.equal(cfg.transform.invocationTimeoutSeconds, 3600);
    assert.equal(cfg.transform.maxRetries, 1);
    assert.equal(cfg.transform.jobNamePrefix, "fuxi-staging");
    assert.deepEqual(cfg.forecast, { cascadeSteps: [20, 20, 20], compression: "none", runsPerDay: 4 });
    assert.equal(cfg.cost, undefined, "no built-in prices");
    assert.equal(cfg.dataBucket.outputRetention, undefined);
    assert.deepEqual(cfg.lambda, { memoryMb: 256, timeoutSeconds: 60, reservedConcurrency: 4, logRetentionDays: 30 });
    assert.equal(cfg.transform.maxConcurrentJobs, 1);
    assert.deepEqual(cfg.trigger, { inputWaitMinutes: 30 });
    assert.deepEqual(cfg.queue, { operationalReserve: 1, maxWaitHours: 24, backfillMaxWaitHours: 312, retrySeconds: 60, oldestRunAlarmMinutes: 120 });
    assert.equal(cfg.image.baseImage, "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker");
  });

  it("rejects run-queue settings that would throttle or cannot hold, by key", () => {
    assert.match(problems({ "fuxi:lambda": { reservedConcurrency: 2 } })[0]!, /^fuxi:lambda\.reservedConcurrency: 2 is below 4; expected at least 4 \(two queues/);
    assert.match(problems({ "fuxi:transform": { maxConcurrentJobs: 0 } })[0]!, /^fuxi:transform\.maxConcurrentJobs: 0 is out of range; expected an integer from 1 to 100/);
    assert.match(problems({ "fuxi:queue": { maxWaitHours: 400 } })[0]!, /^fuxi:queue\.maxWaitHours: 400 is out of range; expected an integer from 1 to 312/);
    assert.match(problems({ "fuxi:trigger": { inputWait: 5 } })[0]!, /^fuxi:trigger\.inputWait: 5 is not a known setting; expected one of inputWaitMinutes/);
  });

  it("accepts numbers and booleans as the strings `pulumi config set --path` may store", () => {
    const raw = stackConfig("dev", {
      "fuxi:transform": { instanceCount: "2", maxRetries: "0", invocationTimeoutSeconds: "900" },
      "fuxi:forecast": { cascadeSteps: ["20", "20"] },
      "fuxi:runtime": { keepAllStages: "true" },
      "fuxi:lambda": { logRetentionDays: "14" },
    });
    const cfg = parseStackConfig({ stack: "dev", region: "cn-northwest-1", raw });
    assert.equal(cfg.transform.instanceCount, 2);
    assert.equal(cfg.transform.maxRetries, 0);
    assert.deepEqual(cfg.forecast.cascadeSteps, [20, 20]);
    assert.equal(cfg.runtime.keepAllStages, true);
    assert.equal(cfg.lambda.logRetentionDays, 14);
    assert.match(problems({ "fuxi:transform": { instanceCount: "two" } })[0]!, /^fuxi:transform\.instanceCount: "two" is out of range; expected an integer from 1 to 100/);
  });

  it("runtime.prefetchNextStage becomes FUXI_PREFETCH_NEXT_STAGE, and is refused beside keepAllStages", () => {
    const cfg = parseStackConfig({ stack: "dev", region: "cn-northwest-1", raw: stackConfig("dev", { "fuxi:runtime": { prefetchNextStage: "true" } }) });
    assert.equal(cfg.runtime.prefetchNextStage, true);
    assert.deepEqual(problems({ "fuxi:runtime": { prefetchNextStage: true, keepAllStages: true } }), [
      "fuxi:runtime.prefetchNextStage: true has nothing to do with runtime.keepAllStages true (all three stages are loaded at start and stay); expected one of the two",
    ]);
  });

  it("base images come from the stack's own partition (China never pulls from outside)", () => {
    assert.match(defaultBaseImage("cn-north-1"), /^727897471807\.dkr\.ecr\.cn-north-1\.amazonaws\.com\.cn\//);
    assert.match(defaultBaseImage("eu-west-1"), /^763104351884\.dkr\.ecr\.eu-west-1\.amazonaws\.com\//);
  });

  const invalid: Array<{ what: string; overrides: Record<string, unknown>; key: string; says: RegExp }> = [
    { what: "a CPU instance type", overrides: { "fuxi:transform": { instanceType: "ml.m5.large" } }, key: "fuxi:transform.instanceType", says: /"ml\.m5\.large" has no GPU; expected ml\.g4dn\.\*, ml\.g5\.\*, ml\.g6\.\*, ml\.p3\.\*/ },
    { what: "an invocation timeout over 3600 s", overrides: { "fuxi:transform": { invocationTimeoutSeconds: 7200 } }, key: "fuxi:transform.invocationTimeoutSeconds", says: /7200 is out of range; expected an integer from 1 to 3600/ },
    { what: "more than 3 retries", overrides: { "fuxi:transform": { maxRetries: 4 } }, key: "fuxi:transform.maxRetries", says: /4 is out of range; expected an integer from 0 to 3/ },
    { what: "a job-name prefix with illegal characters", overrides: { "fuxi:transform": { jobNamePrefix: "FuXi_dev" } }, key: "fuxi:transform.jobNamePrefix", says: /"FuXi_dev" is not a job-name prefix/ },
    { what: "a job-name prefix over 40 characters", overrides: { "fuxi:transform": { jobNamePrefix: "f".repeat(41) } }, key: "fuxi:transform.jobNamePrefix", says: /is too long; expected at most 40/ },
    { what: "a prefix without a trailing slash", overrides: { "fuxi:prefixes": { input: "input" } }, key: "fuxi:prefixes.input", says: /"input" is not a key prefix; expected "" or a path/ },
    { what: "a prefix with a leading slash", overrides: { "fuxi:prefixes": { output: "/out/" } }, key: "fuxi:prefixes.output", says: /"\/out\/" is not a key prefix/ },
    { what: "output under the input prefix", overrides: { "fuxi:prefixes": { input: "data/", output: "data/out/" } }, key: "fuxi:prefixes.output", says: /"data\/out\/" overlaps prefixes\.input "data\/"; expected disjoint prefixes/ },
    { what: "an empty input prefix (overlaps everything)", overrides: { "fuxi:prefixes": { input: "" } }, key: "fuxi:prefixes.output", says: /overlaps prefixes\.input ""/ },
    { what: "model artifacts that are neither prefix nor archive", overrides: { "fuxi:model": { artifacts: "s3://fuxi-weights/fuxi/short.onnx" } }, key: "fuxi:model.artifacts", says: /is neither a prefix nor an archive/ },
    { what: "model artifacts that are not S3", overrides: { "fuxi:model": { artifacts: "https://example.com/fuxi.tar.gz" } }, key: "fuxi:model.artifacts", says: /is not an S3 URI/ },
    { what: "missing model artifacts", overrides: { "fuxi:model": null }, key: "fuxi:model", says: /\(missing\) is required/ },
    { what: "an earlier cascade stage over 20 steps", overrides: { "fuxi:forecast": { cascadeSteps: [25, 20] } }, key: "fuxi:forecast.cascadeSteps", says: /\[25,20\] has stage 1 that runs 25 steps; only the last stage may run more than 20/ },
    { what: "a cascade of 4 stages", overrides: { "fuxi:forecast": { cascadeSteps: [20, 20, 20, 20] } }, key: "fuxi:forecast.cascadeSteps", says: /has 4 stages; expected 1 to 3/ },
    { what: "an unknown compression", overrides: { "fuxi:forecast": { compression: "zstd" } }, key: "fuxi:forecast.compression", says: /"zstd" is not allowed; expected one of none, gzip/ },
    { what: "a log retention CloudWatch rejects", overrides: { "fuxi:lambda": { logRetentionDays: 31 } }, key: "fuxi:lambda.logRetentionDays", says: /31 is not a retention CloudWatch accepts/ },
    { what: "a non-linux/amd64 platform", overrides: { "fuxi:image": { platform: "linux/arm64" } }, key: "fuxi:image.platform", says: /"linux\/arm64" is not supported; expected linux\/amd64/ },
    { what: "a malformed alert e-mail", overrides: { "fuxi:alerts": { emails: ["oncall-at-example.com"] } }, key: "fuxi:alerts.emails[0]", says: /"oncall-at-example\.com" is not an e-mail address/ },
    { what: "a misspelt setting", overrides: { "fuxi:transform": { instanceTyp: "ml.g5.xlarge" } }, key: "fuxi:transform.instanceTyp", says: /is not a known setting; expected one of instanceType, instanceCount/ },
    { what: "an unknown top-level key", overrides: { "fuxi:cascade": "[20]" }, key: "fuxi:cascade", says: /is not a known setting; expected one of dataBucket, prefixes, model/ },
    { what: "an invalid existing bucket name", overrides: { "fuxi:dataBucket": { existingName: "My_Bucket" } }, key: "fuxi:dataBucket.existingName", says: /"My_Bucket" is not a bucket name/ },
    { what: "a CPU-only runtime without allowCpu", overrides: { "fuxi:runtime": { providers: ["cpu"] } }, key: "fuxi:runtime.providers", says: /has no GPU provider/ },
    { what: "a reserved tag key", overrides: { "fuxi:tags": { "aws:owner": "me" } }, key: "fuxi:tags.aws:owner", says: /is reserved/ },
  ];
  for (const c of invalid) {
    it(`rejects ${c.what}, naming ${c.key}`, () => {
      const found = problems(c.overrides);
      const line = found.find((p) => p.startsWith(`${c.key}: `));
      assert.ok(line, `no problem names ${c.key}; got:\n${found.join("\n")}`);
      assert.match(line, c.says);
    });
  }

  it("lists every problem in ONE error", () => {
    const found = problems({
      "fuxi:transform": { instanceType: "ml.c5.xlarge", invocationTimeoutSeconds: 0, maxRetries: 9 },
      "fuxi:prefixes": { input: "in", output: "output/", requests: "output/requests/" },
      "fuxi:lambda": { memoryMb: 64 },
      "fuxi:model": { artifacts: "s3://x" },
    });
    const keys = found.map((p) => p.slice(0, p.indexOf(": ")));
    assert.deepEqual(new Set(keys), new Set([
      "fuxi:transform.instanceType",
      "fuxi:transform.invocationTimeoutSeconds",
      "fuxi:transform.maxRetries",
      "fuxi:prefixes.input",
      "fuxi:prefixes.requests",
      "fuxi:lambda.memoryMb",
      "fuxi:model.artifacts",
    ]));
  });

  it("allows only fuxi:alerts to be a secret", () => {
    const raw = stackConfig("prod");
    const cfg = parseStackConfig({ stack: "prod", region: "cn-northwest-1", raw, secretKeys: ["fuxi:alerts"] });
    assert.deepEqual(cfg.secretKeys, ["alerts"]);
    const found = problems({}, { secretKeys: ["fuxi:prefixes"] });
    assert.equal(found.length, 1);
    assert.match(found[0]!, /^fuxi:prefixes: \(secret\) is stored as a secret/);
  });

  it("rejects regions outside the aws and aws-cn partitions", () => {
    assert.match(problems({}, { region: "us-gov-west-1" })[0]!, /^aws:region: "us-gov-west-1" is in a partition this project does not support/);
    assert.match(problems({}, { region: "" })[0]!, /^aws:region: "" is not an AWS region name/);
  });

  it("requires an explicit job-name prefix when the stack name cannot make one", () => {
    const raw = { "fuxi:model": MODEL };
    assert.throws(() => parseStackConfig({ stack: "Feature_Branch", region: "us-east-1", raw }), /fuxi:transform\.jobNamePrefix: \(missing\) cannot default to "fuxi-Feature_Branch"/);
    const cfg = parseStackConfig({ stack: "Feature_Branch", region: "us-east-1", raw: { ...raw, "fuxi:transform": JSON.stringify({ jobNamePrefix: "fuxi-feature" }) } });
    assert.equal(cfg.transform.jobNamePrefix, "fuxi-feature");
  });

  it("treats prefixes as overlapping when one contains the other", () => {
    assert.equal(prefixesOverlap("input/", "output/"), false);
    assert.equal(prefixesOverlap("in/", "input/"), false);
    assert.equal(prefixesOverlap("data/", "data/out/"), true);
    assert.equal(prefixesOverlap("", "output/"), true);
  });

  describe("fuxi:dataBucket.outputRetention", () => {
    const retention = (r: unknown, extra: Record<string, unknown> = {}) => problems({ "fuxi:dataBucket": { outputRetention: r, ...extra } });

    it("accepts the committed stacks' retention and CLI strings", () => {
      const prod = parseStackConfig({ stack: "prod", region: "cn-northwest-1", raw: stackConfig("prod") });
      assert.deepEqual(prod.dataBucket.outputRetention, { infrequentAccessAfterDays: 30, archiveAfterDays: 90, archiveClass: "GLACIER_IR", expireAfterDays: 365 });
      const raw = stackConfig("dev", { "fuxi:dataBucket": { outputRetention: { infrequentAccessAfterDays: "45", expireAfterDays: "400" } } });
      assert.deepEqual(parseStackConfig({ stack: "dev", region: "cn-northwest-1", raw }).dataBucket.outputRetention, { infrequentAccessAfterDays: 45, expireAfterDays: 400 });
    });

    it("applies S3's minimums: STANDARD_IA from day 30, an archive 30 days after STANDARD_IA", () => {
      assert.deepEqual(retention({ infrequentAccessAfterDays: 29 }), [
        "fuxi:dataBucket.outputRetention.infrequentAccessAfterDays: 29 is out of range; expected an integer from 30 to 36500 (S3 moves objects to STANDARD_IA at the earliest 30 days after creation)",
      ]);
      assert.deepEqual(retention({ infrequentAccessAfterDays: 30, archiveAfterDays: 59 }), [
        "fuxi:dataBucket.outputRetention.archiveAfterDays: 59 is less than 30 days after infrequentAccessAfterDays (30); expected at least 60 (S3 keeps objects in STANDARD_IA 30 days before archiving them)",
      ]);
      // Straight to an archive class is allowed from day 0.
      const raw = stackConfig("dev", { "fuxi:dataBucket": { outputRetention: { archiveAfterDays: 0, archiveClass: "DEEP_ARCHIVE", expireAfterDays: 400 } } });
      assert.equal(parseStackConfig({ stack: "dev", region: "cn-northwest-1", raw }).dataBucket.outputRetention?.archiveAfterDays, 0);
    });

    it("requires the expiry after every transition, and lists every problem at once", () => {
      const found = retention({ infrequentAccessAfterDays: 30, archiveAfterDays: 90, expireAfterDays: 90, archiveClass: "GLACIER_X", keepForever: true });
      assert.deepEqual(found.sort(), [
        'fuxi:dataBucket.outputRetention.archiveClass: "GLACIER_X" is not allowed; expected one of GLACIER_IR, GLACIER, DEEP_ARCHIVE',
        "fuxi:dataBucket.outputRetention.keepForever: true is not a known setting; expected one of infrequentAccessAfterDays, archiveAfterDays, archiveClass, expireAfterDays",
      ].sort());
      assert.deepEqual(retention({ infrequentAccessAfterDays: 30, archiveAfterDays: 90, expireAfterDays: 90 }), [
        "fuxi:dataBucket.outputRetention.expireAfterDays: 90 is not after the last transition (day 90); expected more than 90 (or drop the transitions)",
      ]);
    });

    it("rejects an empty rule, an archive class without a day, and retention on an adopted bucket", () => {
      assert.match(retention({})[0]!, /^fuxi:dataBucket\.outputRetention: \{\} sets no rule; expected at least one of/);
      assert.deepEqual(retention({ archiveClass: "GLACIER", expireAfterDays: 30 }), [
        'fuxi:dataBucket.outputRetention.archiveClass: "GLACIER" has no archiveAfterDays; expected archiveAfterDays with it (or no archiveClass)',
      ]);
      assert.match(retention({ expireAfterDays: 30 }, { existingName: "someone-elses-bucket" })[0]!, /^fuxi:dataBucket\.outputRetention: \{"expireAfterDays":30\} cannot apply to an adopted bucket/);
    });
  });

  describe("fuxi:cost", () => {
    const cost = (c: unknown, extra: Record<string, unknown> = {}) => problems({ "fuxi:cost": c, ...extra });

    it("accepts prices for what the stack uses, with decimal strings as the CLI stores them", () => {
      const raw = stackConfig("prod", { "fuxi:cost": { currency: "CNY", instanceHour: { "ml.g5.2xlarge": "15.5" }, storageGbMonth: { STANDARD: "0.1755", STANDARD_IA: 0.1, GLACIER_IR: 0.04 } } });
      const cfg = parseStackConfig({ stack: "prod", region: "cn-northwest-1", raw });
      assert.deepEqual(cfg.cost, { currency: "CNY", instanceHour: { "ml.g5.2xlarge": 15.5 }, endpointInstanceHour: {}, storageGbMonth: { STANDARD: 0.1755, STANDARD_IA: 0.1, GLACIER_IR: 0.04 } });
    });

    it("an async stack needs the endpoint price of its instance type, not the Batch Transform one", () => {
      const asyncServing = { "fuxi:serving": { mode: "async" } };
      const found = cost({ currency: "CNY", instanceHour: { "ml.g4dn.xlarge": 9 }, endpointInstanceHour: { "ml.g5.2xlarge": 12 } }, asyncServing);
      assert.deepEqual(found.sort(), [
        'fuxi:cost.endpointInstanceHour: {"ml.g5.2xlarge":12} has no price for "ml.g4dn.xlarge" (transform.instanceType, served by the async endpoint (serving.mode "async")); expected a price per instance-hour for every instance type in use (the real-time/asynchronous inference column of the pricing page, not Batch Transform\'s)',
        "fuxi:cost.storageGbMonth: {} has no price for STANDARD; expected a price per GB-month for every storage class the output uses (STANDARD)",
      ]);
      // Priced: accepted without any Batch Transform price, and the CLI's decimal strings are read.
      const raw = stackConfig("dev", { ...asyncServing, "fuxi:cost": { currency: "CNY", endpointInstanceHour: { "ml.g4dn.xlarge": "7.25" }, storageGbMonth: { STANDARD: 0.2 } } });
      assert.deepEqual(parseStackConfig({ stack: "dev", region: "cn-northwest-1", raw }).cost!.endpointInstanceHour, { "ml.g4dn.xlarge": 7.25 });
      // A batch stack may keep endpoint prices (for a later switch) but still needs its transform price.
      assert.match(cost({ currency: "CNY", endpointInstanceHour: { "ml.g4dn.xlarge": 7 }, storageGbMonth: { STANDARD: 0.2 } }).join("\n"), /^fuxi:cost\.instanceHour: \{\} has no price for "ml\.g4dn\.xlarge" \(transform\.instanceType\);/);
      assert.deepEqual(cost({ currency: "CNY", endpointInstanceHour: { "g5.2xlarge": 1, "ml.g4dn.xlarge": -1 }, storageGbMonth: { STANDARD: 0.2 } }, asyncServing).sort(), [
        'fuxi:cost.endpointInstanceHour["g5.2xlarge"]: "g5.2xlarge" is not an instance type; expected ml.<family>.<size>',
        'fuxi:cost.endpointInstanceHour["ml.g4dn.xlarge"]: -1 is negative; expected a non-negative number such as 1.25',
      ]);
    });

    it("requires a price for the instance type and every storage class in use (no silent partial estimate)", () => {
      const found = problems({ "fuxi:cost": { currency: "CNY", instanceHour: { "ml.g4dn.2xlarge": 9 }, storageGbMonth: { STANDARD: 0.2 } } }).sort();
      assert.deepEqual(found, [
        'fuxi:cost.instanceHour: {"ml.g4dn.2xlarge":9} has no price for "ml.g4dn.xlarge" (transform.instanceType); expected a price per instance-hour for every instance type in use',
      ]);
      const prod = stackConfig("prod", { "fuxi:cost": { currency: "CNY", instanceHour: { "ml.g5.2xlarge": 15 }, storageGbMonth: { STANDARD: 0.2 } } });
      assert.throws(
        () => parseStackConfig({ stack: "prod", region: "cn-northwest-1", raw: prod }),
        /fuxi:cost\.storageGbMonth: \{"STANDARD":0\.2\} has no price for STANDARD_IA, GLACIER_IR; expected a price per GB-month for every storage class the output uses \(STANDARD, STANDARD_IA, GLACIER_IR\)/,
      );
    });

    it("names each bad currency, instance type, price and storage class", () => {
      const found = cost({ currency: "yuan", instanceHour: { "g5.2xlarge": 1, "ml.g4dn.xlarge": -3 }, storageGbMonth: { STANDARD: "cheap", TAPE: 1 } });
      assert.deepEqual(found.sort(), [
        'fuxi:cost.currency: "yuan" is not a currency code; expected 3 capital letters such as CNY or USD',
        'fuxi:cost.instanceHour["g5.2xlarge"]: "g5.2xlarge" is not an instance type; expected ml.<family>.<size>',
        'fuxi:cost.instanceHour["ml.g4dn.xlarge"]: -3 is negative; expected a non-negative number such as 1.25',
        'fuxi:cost.storageGbMonth.STANDARD: "cheap" is not a price; expected a non-negative number such as 1.25',
        "fuxi:cost.storageGbMonth.TAPE: 1 is not a known setting; expected one of STANDARD, STANDARD_IA, GLACIER_IR, GLACIER, DEEP_ARCHIVE",
      ].sort());
      assert.match(cost({ instanceHour: {} })[0]!, /^fuxi:cost\.currency: \(missing\) is not a currency/);
    });

    it("takes fuxi:forecast.runsPerDay for the estimates, fractions included", () => {
      const raw = stackConfig("dev", { "fuxi:forecast": { cascadeSteps: [20], runsPerDay: "0.5" } });
      assert.equal(parseStackConfig({ stack: "dev", region: "cn-northwest-1", raw }).forecast.runsPerDay, 0.5);
      assert.match(problems({ "fuxi:forecast": { runsPerDay: 0 } })[0]!, /^fuxi:forecast\.runsPerDay: 0 is out of range; expected runs per day from 0\.01 to 100/);
    });
  });
});
