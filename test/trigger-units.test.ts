import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { decodeEventKey, matchMarkerKey, sanitiseRunId, SAGEMAKER_NAME_PATTERN as JOB_NAME_PATTERN, transformJobName, TRIGGER_ENV_NAMES, TRIGGER_OPTIONAL_ENV_NAMES, TRIGGER_REQUIRED_ENV_NAMES } from "../runtime/src/contract";
import { readTriggerEnv, TriggerEnvError } from "../trigger/env";
import { classifyRecord } from "../trigger/event";
import { isAlreadyExistsError, isTransientAwsError } from "../trigger/errors";
import { tagValue } from "../trigger/request";
import { BUCKET, markerRecord, sageMakerError, TEST_ENV } from "./trigger-fixtures";


function envFault(overrides: Record<string, string | undefined>): string[] {
  try {
    readTriggerEnv({ ...TEST_ENV, ...overrides });
  } catch (error) {
    assert.ok(error instanceof TriggerEnvError, `expected TriggerEnvError, got ${String(error)}`);
    return error.faults;
  }
  assert.fail(`environment ${JSON.stringify(overrides)} was accepted`);
}

describe("trigger environment", () => {
  it("lists exactly the variables of docs/contract.md", () => {
    assert.deepEqual([...TRIGGER_ENV_NAMES].sort(), [...Object.keys(TEST_ENV), "S3_FORCE_PATH_STYLE", "SERVING_MODE", "ASYNC_ENDPOINT_NAME"].sort());
    assert.deepEqual([...TRIGGER_OPTIONAL_ENV_NAMES], ["TRANSFORM_AMI_VERSION", "S3_FORCE_PATH_STYLE", "SERVING_MODE", "ASYNC_ENDPOINT_NAME"]);
    assert.equal(TRIGGER_REQUIRED_ENV_NAMES.length + TRIGGER_OPTIONAL_ENV_NAMES.length, TRIGGER_ENV_NAMES.length);
  });

  it("serving mode async needs its endpoint, and is read as such", () => {
    assert.deepEqual(readTriggerEnv({ ...TEST_ENV, SERVING_MODE: "async", ASYNC_ENDPOINT_NAME: "fuxi-test-async" }).serving, { mode: "async", endpointName: "fuxi-test-async" });
    assert.equal(readTriggerEnv({ ...TEST_ENV, SERVING_MODE: "batch" }).serving, undefined);
    assert.throws(() => readTriggerEnv({ ...TEST_ENV, SERVING_MODE: "async" }), /ASYNC_ENDPOINT_NAME is not set/);
    assert.throws(() => readTriggerEnv({ ...TEST_ENV, SERVING_MODE: "realtime" }), /SERVING_MODE must be "batch" or "async"/);
  });

  it("parses a valid environment into typed values", () => {
    assert.deepEqual(readTriggerEnv({ ...TEST_ENV, S3_FORCE_PATH_STYLE: "true", UNRELATED: "x" }), {
      stackName: "test",
      dataBucket: BUCKET,
      inputPrefix: "input/",
      outputPrefix: "output/",
      requestsPrefix: "requests/",
      jobNamePrefix: "fuxi-test",
      modelName: "fuxi-test-model-1234",
      cascadeSteps: [20, 20, 20],
      outputCompression: "none",
      instanceType: "ml.g5.2xlarge",
      instanceCount: 1,
      invocationTimeoutSeconds: 3600,
      invocationMaxRetries: 1,
      transformAmiVersion: "al2-ami-sagemaker-batch-gpu-535",
      s3ForcePathStyle: true,
      queues: { operational: TEST_ENV.OPERATIONAL_QUEUE_URL, backfill: TEST_ENV.BACKFILL_QUEUE_URL, deadLetter: TEST_ENV.DEAD_LETTER_QUEUE_URL },
      maxConcurrentJobs: 100,
      operationalReserve: 1,
      inputWaitMinutes: 0,
      maxWaitMinutes: { operational: 1440, backfill: 18720 },
      retrySeconds: 60,
      maxReceiveCount: 1000,
      admissionGraceSeconds: 120,
    });
  });

  it("names every bad run-queue variable", () => {
    assert.throws(
      () => readTriggerEnv({ ...TEST_ENV, OPERATIONAL_QUEUE_URL: "fuxi-runs", MAX_CONCURRENT_JOBS: "0", MAX_RECEIVE_COUNT: "5000", RETRY_SECONDS: undefined }),
      /OPERATIONAL_QUEUE_URL must be an SQS queue URL.*MAX_CONCURRENT_JOBS must be a whole number from 1 to 100.*RETRY_SECONDS is not set.*MAX_RECEIVE_COUNT must be a whole number from 10 to 1000/,
    );
  });

  it("treats the optional variables as optional and an empty AMI version as unset", () => {
    const config = readTriggerEnv({ ...TEST_ENV, TRANSFORM_AMI_VERSION: "", S3_FORCE_PATH_STYLE: undefined });
    assert.equal("transformAmiVersion" in config, false);
    assert.equal(config.s3ForcePathStyle, false);
    assert.deepEqual(readTriggerEnv({ ...TEST_ENV, CASCADE_STEPS: "20,20,34" }).cascadeSteps, [20, 20, 34]);
    assert.deepEqual(readTriggerEnv({ ...TEST_ENV, CASCADE_STEPS: "2" }).cascadeSteps, [2]);
  });

  it("names every bad variable in one error", () => {
    const faults = envFault({
      STACK_NAME: undefined,
      DATA_BUCKET: "Not_A_Bucket",
      INPUT_PREFIX: "input",
      JOB_NAME_PREFIX: "-fuxi",
      CASCADE_STEPS: "20,20,20,20",
      OUTPUT_COMPRESSION: "zstd",
      TRANSFORM_INSTANCE_TYPE: "g4dn.xlarge",
      TRANSFORM_INSTANCE_COUNT: "0",
      INVOCATION_TIMEOUT_SECONDS: "3601",
      INVOCATION_MAX_RETRIES: "4",
      S3_FORCE_PATH_STYLE: "yes",
    });
    const named = ["STACK_NAME is not set", "DATA_BUCKET", "INPUT_PREFIX", "JOB_NAME_PREFIX", "CASCADE_STEPS", "OUTPUT_COMPRESSION",
      "TRANSFORM_INSTANCE_TYPE", "TRANSFORM_INSTANCE_COUNT", "INVOCATION_TIMEOUT_SECONDS", "INVOCATION_MAX_RETRIES", "S3_FORCE_PATH_STYLE"];
    for (const text of named) assert.ok(faults.some((f) => f.startsWith(text)), `no fault about ${text} in ${JSON.stringify(faults)}`);
    assert.equal(faults.length, named.length, JSON.stringify(faults));
  });

  it("applies the cascade-step rules of the request contract", () => {
    assert.match(envFault({ CASCADE_STEPS: "21,20,20" })[0], /entry 1 runs 21 steps; only the last stage may run more than 20/);
    assert.match(envFault({ CASCADE_STEPS: "0,0,0" })[0], /adds up to 0 steps; expected 1 to 100/);
    assert.match(envFault({ CASCADE_STEPS: "20,20,61" })[0], /adds up to 101 steps/);
    assert.match(envFault({ CASCADE_STEPS: "20, 20" })[0], /comma-separated whole numbers/);
  });

  it("rejects overlapping input and output prefixes together with other faults", () => {
    const faults = envFault({ INPUT_PREFIX: "data/", OUTPUT_PREFIX: "data/out/", MODEL_NAME: "bad_name" });
    assert.equal(faults.length, 2, JSON.stringify(faults));
    assert.match(faults.join("\n"), /MODEL_NAME must be a SageMaker model name/);
    assert.match(faults.join("\n"), /INPUT_PREFIX "data\/" and OUTPUT_PREFIX "data\/out\/" overlap/);
    assert.match(envFault({ INPUT_PREFIX: "" })[0], /overlap/);
  });
});

describe("trigger job names", () => {
  const identity = { bucket: BUCKET, key: "input/2023101206/_SUCCESS", sequencer: "0055AED6DCD90281E5" };

  it("follows <jobPrefix>-<sanitised runId>-<first 8 hex of sha256(bucket\\nkey\\nversionId ?? sequencer)>", () => {
    const hex = createHash("sha256").update(`${BUCKET}\ninput/2023101206/_SUCCESS\n0055AED6DCD90281E5`).digest("hex").slice(0, 8);
    assert.equal(transformJobName("fuxi-test", "2023101206", identity), `fuxi-test-2023101206-${hex}`);
  });

  it("uses the versionId when there is one, else the sequencer", () => {
    const v1 = transformJobName("fuxi", "r", { ...identity, versionId: "v1" });
    assert.equal(transformJobName("fuxi", "r", { ...identity, versionId: "v1", sequencer: "OTHER" }), v1, "sequencer must not matter when versioned");
    assert.notEqual(transformJobName("fuxi", "r", { ...identity, versionId: "v2" }), v1, "new version, new job");
    const s1 = transformJobName("fuxi", "r", identity);
    assert.notEqual(transformJobName("fuxi", "r", { ...identity, sequencer: "0055AED6DCD90281E6" }), s1, "new sequencer, new job");
    // Versioning-suspended buckets report "null" for every upload: fall back to the sequencer.
    assert.equal(transformJobName("fuxi", "r", { ...identity, versionId: "null" }), s1);
    assert.throws(() => transformJobName("fuxi", "r", { bucket: BUCKET, key: "k" }), /neither versionId nor sequencer/);
  });

  it("keeps every name within 63 characters and SageMaker's pattern", () => {
    const prefixes = ["f", "fuxi-dev", "a".repeat(40), "x-".repeat(19) + "xy"];
    const runIds = ["2023101206", "r".repeat(300), "run 2023 10 12", "a--b__c..d", "你好", "-_-", "2023/10", "x".repeat(21) + "-" + "y".repeat(40)];
    for (const prefix of prefixes) {
      for (const runId of runIds) {
        const name = transformJobName(prefix, runId, identity);
        assert.ok(name.length <= 63, `${name} is ${name.length} long`);
        assert.match(name, JOB_NAME_PATTERN);
        assert.ok(name.startsWith(`${prefix}-`), name);
      }
    }
    assert.equal(transformJobName("a".repeat(40), "r".repeat(300), identity).length, 63);
  });

  it("sanitises runIds", () => {
    assert.equal(sanitiseRunId("run 2023 10", 50), "run-2023-10");
    assert.equal(sanitiseRunId("--a__b--", 50), "a-b");
    assert.equal(sanitiseRunId("你好2023", 50), "2023");
    assert.equal(sanitiseRunId("abc-def", 4), "abc", "no dash left at the cut");
    assert.match(transformJobName("fuxi", "你好", identity), /^fuxi-[0-9a-f]{8}$/);
  });
});

describe("trigger event records", () => {
  it("decodes keys the way S3 encodes them", () => {
    assert.equal(decodeEventKey("input/run+1/_SUCCESS"), "input/run 1/_SUCCESS");
    assert.equal(decodeEventKey("input/%E4%BD%A0/_SUCCESS"), "input/你/_SUCCESS");
    assert.equal(decodeEventKey("input%2Fa%2F_SUCCESS"), "input/a/_SUCCESS");
    assert.equal(decodeEventKey("input/a%2Bb/_SUCCESS"), "input/a+b/_SUCCESS");
    assert.throws(() => decodeEventKey("input/%E4%BD/_SUCCESS"), URIError);
  });

  it("recognises only <inputPrefix><runId>/_SUCCESS", () => {
    assert.deepEqual(matchMarkerKey("input/2023101206/_SUCCESS", "input/"), { runId: "2023101206" });
    assert.deepEqual(matchMarkerKey("2023101206/_SUCCESS", ""), { runId: "2023101206" });
    assert.match((matchMarkerKey("other/2023/_SUCCESS", "input/") as { skip: string }).skip, /outside the input prefix/);
    assert.match((matchMarkerKey("input/_SUCCESS", "input/") as { skip: string }).skip, /root of the input prefix/);
    assert.match((matchMarkerKey("input/a/b/_SUCCESS", "input/") as { skip: string }).skip, /nested deeper/);
    assert.match((matchMarkerKey("input/a/x.nc", "input/") as { skip: string }).skip, /not a _SUCCESS marker/);
    assert.match((matchMarkerKey("input/a/_SUCCESS.bak", "input/") as { skip: string }).skip, /not a _SUCCESS marker/);
    assert.match((matchMarkerKey("input//_SUCCESS", "input/") as { skip: string }).skip, /empty/);
  });

  it("classifies records and explains skips", () => {
    const marker = classifyRecord(markerRecord("input/r1/_SUCCESS", { versionId: "v" }), BUCKET, "input/");
    assert.equal(marker.kind, "marker");
    assert.equal(classifyRecord(markerRecord("input/r1/_SUCCESS", { bucket: "other-bucket" }), BUCKET, "input/").kind, "skip");
    const removed = classifyRecord(markerRecord("input/r1/_SUCCESS", { eventName: "ObjectRemoved:Delete" }), BUCKET, "input/");
    assert.deepEqual(removed, { kind: "skip", reason: "event ObjectRemoved:Delete is not an object creation", key: "input/r1/_SUCCESS" });
    const malformed = classifyRecord({ eventName: "ObjectCreated:Put", s3: { bucket: {} } }, BUCKET, "input/");
    assert.equal(malformed.kind, "invalid");
    assert.match((malformed as { reason: string }).reason, /malformed S3 event record \(eventTime: .*s3\.bucket\.name/);
    const noIdentity = markerRecord("input/r1/_SUCCESS");
    delete noIdentity.s3.object.sequencer;
    assert.match((classifyRecord(noIdentity, BUCKET, "input/") as { reason: string }).reason, /neither a versionId nor a sequencer/);
    const numericSequencer = markerRecord("input/r1/_SUCCESS");
    (numericSequencer.s3.object as { sequencer: unknown }).sequencer = 1234;
    const verdict = classifyRecord(numericSequencer, BUCKET, "input/");
    assert.equal(verdict.kind === "marker" && verdict.marker.sequencer, "1234");
  });
});

describe("trigger error classes", () => {
  it("recognises SageMaker's already-exists answers", () => {
    assert.ok(isAlreadyExistsError(sageMakerError("ResourceInUse", "Resource in use", 400)));
    assert.ok(isAlreadyExistsError(sageMakerError("ValidationException", "Job name must be unique within an AWS account and region, and a job with this name already exists (arn:...)", 400)));
    assert.ok(!isAlreadyExistsError(sageMakerError("ValidationException", "Could not find model \"m\".", 400)));
  });

  it("retries throttling, 5xx, quota and network faults but not validation or access errors", () => {
    for (const transient of [
      sageMakerError("ThrottlingException", "Rate exceeded", 400),
      sageMakerError("InternalFailure", "oops", 500),
      sageMakerError("ServiceUnavailable", "later", 503),
      sageMakerError("ResourceLimitExceeded", "quota", 400),
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }),
      new TypeError("a bug"),
    ]) assert.ok(isTransientAwsError(transient), `${transient.name} should be transient`);
    for (const permanent of [
      sageMakerError("ValidationException", "bad instance type", 400),
      sageMakerError("AccessDenied", "no", 403),
      sageMakerError("NoSuchBucket", "gone", 404),
    ]) assert.ok(!isTransientAwsError(permanent), `${permanent.name} should be permanent`);
  });

  it("makes tag values from any runId", () => {
    assert.equal(tagValue("2023101206"), "2023101206");
    assert.equal(tagValue("你好 run#1"), "你好 run_1");
    assert.equal(tagValue("x".repeat(300)).length, 256);
  });
});
