import assert from "node:assert/strict";
import { createCipheriv } from "node:crypto";
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateTransformJobCommand } from "@aws-sdk/client-sagemaker";
import { createDispatcherHandler, type RunOutcome, type TriggerDeps } from "../trigger/handler";
import { TriggerEnvError } from "../trigger/env";
import { LOCAL_CREDENTIALS, LOCAL_REGION, startLocalS3, type LocalS3 } from "../tools/local-s3";
import { BUCKET, captureLogs, eventOf, fakeSageMaker, fakeSqs, markerRecord, s3EventKey, sageMakerError, sqsEventOf, TEST_ENV, type LogLine } from "./trigger-fixtures";

/** The decision lines (request-object bookkeeping lines left out). */
const decided = (lines: LogLine[]) => lines.filter((l) => l.decision !== "request-written" && l.decision !== "request-exists");

/** The dispatcher, fed each S3 event as one operational-queue message (as S3 → SQS delivers it). */
function asQueue(handle: ReturnType<typeof createDispatcherHandler>) {
  return async (event: unknown, context?: { awsRequestId?: string }) => {
    const result = await handle(sqsEventOf(event), context);
    return { outcomes: result.messages.flatMap((m) => m.outcomes), result };
  };
}

import { SAGEMAKER_NAME_PATTERN as JOB_NAME_PATTERN } from "../runtime/src/contract";
const NOW = new Date("2026-11-22T06:00:00.000Z");

describe("trigger handler (real S3 on loopback, SageMaker mocked)", function () {
  let s3: LocalS3;
  before(async () => {
    s3 = await startLocalS3({ buckets: [BUCKET] });
  });
  after(async () => {
    await s3.stop();
  });

  async function put(key: string, body = ""): Promise<void> {
    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  }
  async function readJson(key: string): Promise<Record<string, unknown>> {
    const got = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return JSON.parse(await got.Body!.transformToString()) as Record<string, unknown>;
  }
  async function exists(key: string): Promise<boolean> {
    try {
      await s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
      return true;
    } catch (error) {
      if ((error as { name?: string }).name === "NotFound") return false;
      throw error;
    }
  }
  /** A run folder with one input file and its marker, as a user uploads it. */
  async function run(runId: string, ncName = "fuxi_input.nc"): Promise<void> {
    await put(`input/${runId}/${ncName}`, "netcdf bytes");
    await put(`input/${runId}/_SUCCESS`);
  }
  function setup(overrides: Partial<TriggerDeps> = {}) {
    const sageMaker = fakeSageMaker();
    const sqs = fakeSqs();
    const logs = captureLogs();
    const handle = asQueue(createDispatcherHandler({ env: TEST_ENV, s3: s3.client, sageMaker: sageMaker.client, sqs: sqs.client, logger: logs.logger, now: () => NOW, ...overrides }));
    return { handle, sageMaker, sqs, logs };
  }
  const decisions = (outcomes: RunOutcome[]) => outcomes.map((o) => o.decision);

  it("writes the request object and starts one job with exactly the contract's CreateTransformJob input", async () => {
    await run("2023101206");
    const { handle, sageMaker, logs } = setup();
    const record = markerRecord("input/2023101206/_SUCCESS", { versionId: "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", sequencer: "0055AED6DCD90281E5" });
    const { outcomes } = await handle(eventOf(record), { awsRequestId: "req-1" });

    assert.equal(outcomes.length, 1);
    const outcome = outcomes[0];
    assert.equal(outcome.decision, "started");
    const jobName = (outcome as { jobName: string }).jobName;
    assert.match(jobName, /^fuxi-test-2023101206-[0-9a-f]{8}$/);


    assert.deepEqual(await readJson(`requests/${jobName}.json`), {
      version: 1,
      jobName,
      runId: "2023101206",
      input: `s3://${BUCKET}/input/2023101206/fuxi_input.nc`,
      outputPrefix: `s3://${BUCKET}/output/2023101206/`,
      cascadeSteps: [20, 20, 20],
      outputFormat: "netcdf4",
      compression: "none",
      requestedAt: "2026-11-22T06:00:00.000Z",
      event: {
        bucket: BUCKET,
        key: "input/2023101206/_SUCCESS",
        versionId: "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
        sequencer: "0055AED6DCD90281E5",
        eventName: "ObjectCreated:Put",
        eventTime: "2026-11-22T05:59:58.000Z",
      },
    });

    const calls = sageMaker.createCalls();
    assert.equal(calls.length, 1);
    const input = calls[0];
    assert.equal(input.TransformJobName, jobName);
    assert.equal(input.ModelName, "fuxi-test-model-1234");
    assert.equal(input.MaxConcurrentTransforms, 1);
    assert.equal(input.MaxPayloadInMB, 1);
    assert.equal(input.BatchStrategy, "SingleRecord");
    assert.deepEqual(input.ModelClientConfig, { InvocationsTimeoutInSeconds: 3600, InvocationsMaxRetries: 1 });
    assert.deepEqual(input.TransformInput, {
      DataSource: { S3DataSource: { S3DataType: "S3Prefix", S3Uri: `s3://${BUCKET}/requests/${jobName}.json` } },
      ContentType: "application/json",
      CompressionType: "None",
      SplitType: "None",
    });
    assert.deepEqual(input.TransformOutput, {
      S3OutputPath: `s3://${BUCKET}/output/2023101206/_transform/`,
      Accept: "application/json",
      AssembleWith: "None",
    });
    assert.deepEqual(input.TransformResources, {
      InstanceType: "ml.g5.2xlarge",
      InstanceCount: 1,
      TransformAmiVersion: "al2-ami-sagemaker-batch-gpu-535",
    });
    assert.deepEqual(input.Tags, [
      { Key: "fuxi:stack", Value: "test" },
      { Key: "fuxi:runId", Value: "2023101206" },
    ]);
    assert.ok(Object.keys(input.Environment ?? {}).length <= 16);
    assert.deepEqual(
      Object.keys(input).sort(),
      ["BatchStrategy", "MaxConcurrentTransforms", "MaxPayloadInMB", "ModelClientConfig", "ModelName", "Tags", "TransformInput", "TransformJobName", "TransformOutput", "TransformResources"],
      "no field beyond the contract's",
    );

    assert.equal(decided(logs.lines).length, 1, "one log line per decision");
    const [line] = decided(logs.lines);
    assert.equal(line.decision, "started");
    assert.equal(line.jobName, jobName);
    assert.equal(line.awsRequestId, "req-1");
    assert.equal(line.level, "info");
    assert.equal(line.RunsStarted, 1, "the RunsStarted metric (Embedded Metric Format)");
  });

  it("leaves TransformAmiVersion out when the stack sets none", async () => {
    await run("noami");
    const { handle, sageMaker } = setup({ env: { ...TEST_ENV, TRANSFORM_AMI_VERSION: undefined as unknown as string } });
    await handle(eventOf(markerRecord("input/noami/_SUCCESS")));
    assert.deepEqual(sageMaker.createCalls()[0].TransformResources, { InstanceType: "ml.g5.2xlarge", InstanceCount: 1 });
  });

  it("starts one job for the same event delivered three times, and leaves the first request object in place", async () => {
    await run("dup");
    const record = markerRecord("input/dup/_SUCCESS");
    const { handle, sageMaker, logs } = setup();
    const first = await handle(eventOf(record));
    const firstRequest = await readJson(`requests/${(first.outcomes[0] as { jobName: string }).jobName}.json`);
    const later = asQueue(createDispatcherHandler({ env: TEST_ENV, s3: s3.client, sageMaker: sageMaker.client, sqs: fakeSqs().client, logger: logs.logger, now: () => new Date("2026-11-22T07:00:00Z") }));
    const second = await later(eventOf(record));
    const third = await later(eventOf(record));

    assert.deepEqual([...decisions(first.outcomes), ...decisions(second.outcomes), ...decisions(third.outcomes)], ["started", "duplicate", "duplicate"]);
    assert.equal(sageMaker.jobs.size, 1, "one job");
    const names = new Set([first, second, third].map((r) => (r.outcomes[0] as { jobName: string }).jobName));
    assert.equal(names.size, 1, "every delivery maps to the same name");
    const [jobName] = names;
    assert.deepEqual(await readJson(`requests/${jobName}.json`), firstRequest, "duplicates do not rewrite the request");
    assert.deepEqual(decided(logs.lines).map((l) => l.decision), ["started", "duplicate", "duplicate"]);
  });

  it("treats ResourceInUse from SageMaker as a duplicate too", async () => {
    await run("inuse");
    const { handle, sageMaker } = setup();
    sageMaker.mock.on(CreateTransformJobCommand).rejects(sageMakerError("ResourceInUse", "Resource already exists", 400));
    const { outcomes } = await handle(eventOf(markerRecord("input/inuse/_SUCCESS")));
    assert.deepEqual(decisions(outcomes), ["duplicate"]);
  });

  it("starts two jobs for two runs in one event, and a new job for a deliberate re-upload of a marker", async () => {
    await run("runA");
    await run("runB");
    const { handle, sageMaker } = setup();
    const { outcomes } = await handle(eventOf(markerRecord("input/runA/_SUCCESS", { versionId: "a1" }), markerRecord("input/runB/_SUCCESS", { versionId: "b1" })));
    assert.deepEqual(decisions(outcomes), ["started", "started"]);
    assert.deepEqual([...sageMaker.jobs.values()].map((j) => j.Tags?.[1].Value).sort(), ["runA", "runB"]);

    const reupload = await handle(eventOf(markerRecord("input/runA/_SUCCESS", { versionId: "a2" })));
    assert.deepEqual(decisions(reupload.outcomes), ["started"]);
    assert.equal(sageMaker.jobs.size, 3);
    assert.notEqual((reupload.outcomes[0] as { jobName: string }).jobName, (outcomes[0] as { jobName: string }).jobName);
  });

  it("decodes + as space, unicode escapes and %2F in keys", async () => {
    await run("run 2023 10");
    await run("你好2023");
    await run("slashed");
    const { handle, sageMaker } = setup();
    const { outcomes } = await handle(
      eventOf(
        markerRecord(s3EventKey("input/run 2023 10/_SUCCESS")),
        markerRecord("input/%E4%BD%A0%E5%A5%BD2023/_SUCCESS"),
        markerRecord("input%2Fslashed%2F_SUCCESS"),
        markerRecord("input/a%2Fb/_SUCCESS"),
      ),
    );
    assert.equal(s3EventKey("input/run 2023 10/_SUCCESS"), "input/run+2023+10/_SUCCESS");
    assert.deepEqual(decisions(outcomes), ["started", "started", "started", "skipped"]);
    const [spaced, unicode, slashed, nested] = (outcomes as unknown as Array<{ runId: string; jobName: string; requestKey: string; reason: string }>).map((o) => ({ ...o, requestKey: `requests/${o.jobName}.json` }));
    assert.equal(spaced.runId, "run 2023 10");
    assert.match(spaced.jobName, /^fuxi-test-run-2023-10-[0-9a-f]{8}$/);
    assert.equal((await readJson(spaced.requestKey)).input, `s3://${BUCKET}/input/run 2023 10/fuxi_input.nc`);
    assert.equal(unicode.runId, "你好2023");
    assert.match(unicode.jobName, /^fuxi-test-2023-[0-9a-f]{8}$/);
    assert.equal((await readJson(unicode.requestKey)).outputPrefix, `s3://${BUCKET}/output/你好2023/`);
    assert.equal(slashed.runId, "slashed");
    assert.match(nested.reason, /nested deeper/);
    assert.equal(sageMaker.jobs.size, 3);
    for (const job of sageMaker.jobs.values()) assert.match(job.TransformJobName!, JOB_NAME_PATTERN);
  });

  it("skips markers outside the input prefix, at its root, for other buckets, deletions and TestEvents, with a log line each", async () => {
    await put("other/2023/fuxi.nc", "x");
    const { handle, sageMaker, logs } = setup();
    const { outcomes } = await handle(
      eventOf(
        markerRecord("other/2023/_SUCCESS"),
        markerRecord("input/_SUCCESS"),
        markerRecord("input/2023101206/_SUCCESS", { bucket: "someone-elses-bucket" }),
        markerRecord("input/2023101206/_SUCCESS", { eventName: "ObjectRemoved:Delete" }),
        markerRecord("input/2023101206/fuxi_input.nc"),
      ),
    );
    assert.deepEqual(decisions(outcomes), ["skipped", "skipped", "skipped", "skipped", "skipped"]);
    assert.deepEqual(
      outcomes.map((o) => (o as { reason: string }).reason),
      [
        'key is outside the input prefix "input/"',
        "marker at the root of the input prefix has no run folder",
        `bucket someone-elses-bucket is not the data bucket ${BUCKET}`,
        "event ObjectRemoved:Delete is not an object creation",
        "key is not a _SUCCESS marker",
      ],
    );
    const test = await handle({ Service: "Amazon S3", Event: "s3:TestEvent", Time: "2026-11-22T05:00:00.000Z", Bucket: BUCKET, RequestId: "R", HostId: "H" });
    assert.deepEqual(decisions(test.outcomes), ["skipped"]);
    assert.deepEqual(test.result.batchItemFailures, [], "skipped messages are deleted");
    assert.equal(sageMaker.createCalls().length, 0);
    assert.deepEqual(logs.lines.map((l) => [l.decision, l.level]), [...Array(6)].map(() => ["skipped", "info"]));
    assert.equal(logs.lines[5].reason, "s3:TestEvent");
  });

  it("logs records it cannot use without stopping the others or throwing", async () => {
    await run("good");
    const { handle, logs, sqs } = setup();
    const noIdentity = markerRecord("input/good/_SUCCESS");
    delete noIdentity.s3.object.sequencer;
    const { outcomes } = await handle(eventOf(markerRecord("input/%E4%BD/_SUCCESS"), { bogus: true } as never, noIdentity, markerRecord("input/good/_SUCCESS")));
    assert.deepEqual(decisions(outcomes), ["invalid", "invalid", "invalid", "started"]);
    assert.match((outcomes[0] as { reason: string }).reason, /not valid URL encoding/);
    assert.deepEqual(decided(logs.lines).map((l) => l.level), ["error", "error", "error", "info"]);
    const notAnEvent = await handle({ detail: "EventBridge?" } as never);
    assert.deepEqual(decisions(notAnEvent.outcomes), ["invalid"]);
    assert.equal(logs.lines.at(-1)!.reason, "message is neither an S3 event notification nor a backfill run");
    assert.equal(logs.lines.at(-1)!.RunsNotStarted, 1, "loud: the RunsNotStarted metric");
    // Both messages held an unusable record: both went to the dead-letter queue, nothing was dropped.
    assert.deepEqual(sqs.sent().map((m) => m.QueueUrl), [TEST_ENV.DEAD_LETTER_QUEUE_URL, TEST_ENV.DEAD_LETTER_QUEUE_URL]);
  });

  it("lists run folders past 1,000 objects and finds the one input file on a later page", async function () {
    this.timeout(60_000);
    try {
      createCipheriv("des", Buffer.alloc(8), Buffer.alloc(8));
    } catch {
      assert.fail("s3rver encrypts continuation tokens with DES: run node with --openssl-legacy-provider (.mocharc.json does)");
    }
    // 1,000 fillers + the input + the marker: the input file is on the second page of 1,000 keys.
    const keys = Array.from({ length: 1_000 }, (_, i) => `input/big/aux-${String(i).padStart(4, "0")}.txt`);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((key) => put(key, "x")));
    await run("big", "zz_input.nc"); // sorts after every aux file, so it is on the second page
    await put("input/big/nested/extra.nc", "nested files are not inputs");
    const { handle, sageMaker } = setup();
    const { outcomes } = await handle(eventOf(markerRecord("input/big/_SUCCESS")));
    assert.deepEqual(decisions(outcomes), ["started"]);
    const request = await readJson(`requests/${outcomes[0].jobName}.json`);
    assert.equal(request.input, `s3://${BUCKET}/input/big/zz_input.nc`);
    assert.equal(sageMaker.jobs.size, 1);

    // A second .nc on the second page must be seen too: the folder is then rejected.
    await put("input/big/zz_second.NC", "x");
    const again = await handle(eventOf(markerRecord("input/big/_SUCCESS")));
    assert.deepEqual(decisions(again.outcomes), ["rejected"]);
    const failed = await readJson("output/big/_FAILED.json");
    assert.deepEqual(failed.found, {
      ncObjects: [`s3://${BUCKET}/input/big/zz_input.nc`, `s3://${BUCKET}/input/big/zz_second.NC`],
      ncObjectCount: 2,
      objectCount: 1_000 + 4,
    });
  });

  it("writes _FAILED.json and starts no job for a folder with no input file or several", async () => {
    await put("input/empty/readme.txt", "no data");
    await put("input/empty/_SUCCESS");
    await put("input/two/a.nc", "x");
    await put("input/two/b.nc", "x");
    await put("input/two/_SUCCESS");
    const { handle, sageMaker, logs } = setup();
    const emptyMarker = markerRecord("input/empty/_SUCCESS", { versionId: "e1" });
    const { outcomes } = await handle(eventOf(emptyMarker, markerRecord("input/two/_SUCCESS")));
    assert.deepEqual(decisions(outcomes), ["rejected", "rejected"]);
    assert.equal(sageMaker.createCalls().length, 0);
    const empty = await readJson("output/empty/_FAILED.json");
    assert.deepEqual(empty, {
      version: 1,
      stage: "input-folder",
      runId: "empty",
      jobName: (outcomes[0] as { jobName: string }).jobName,
      reason: `expected exactly one .nc object directly under s3://${BUCKET}/input/empty/, found 0 (0 min after the marker)`,
      expected: `exactly one <name>.nc directly under s3://${BUCKET}/input/empty/`,
      found: { ncObjects: [], ncObjectCount: 0, objectCount: 2 },
      event: { bucket: BUCKET, key: "input/empty/_SUCCESS", versionId: "e1", sequencer: emptyMarker.s3.object.sequencer, eventName: "ObjectCreated:Put", eventTime: "2026-11-22T05:59:58.000Z" },
      failedAt: NOW.toISOString(),
    });
    const two = await readJson("output/two/_FAILED.json");
    assert.match(two.reason as string, /found 2$/);
    assert.deepEqual((two.found as { ncObjects: string[] }).ncObjects, [`s3://${BUCKET}/input/two/a.nc`, `s3://${BUCKET}/input/two/b.nc`]);
    for (const o of outcomes) assert.equal(await exists(`requests/${(o as { jobName: string }).jobName}.json`), false, "no request object for a rejected run");
    assert.deepEqual(decided(logs.lines).map((l) => [l.decision, l.level]), [["rejected", "warn"], ["rejected", "warn"]]);
  });

  it("keeps a message queued when SageMaker throttles (after handling the others), and the next receive finishes the work", async () => {
    await run("throttled");
    await run("fine");
    const { handle, sageMaker, sqs, logs } = setup();
    const event = eventOf(markerRecord("input/throttled/_SUCCESS"), markerRecord("input/fine/_SUCCESS"));
    sageMaker.failNext.push(sageMakerError("ThrottlingException", "Rate exceeded", 400));
    const first = await handle(event);
    assert.deepEqual(decisions(first.outcomes), ["retry", "started"]);
    assert.match(String(first.outcomes[0].reason), /ThrottlingException: Rate exceeded/);
    assert.equal(first.result.batchItemFailures.length, 1, "reported as a batch item failure: the message stays");
    assert.equal(sqs.delays()[0].VisibilityTimeout, 60, "visible again after RETRY_SECONDS");
    assert.equal(sageMaker.jobs.size, 1, "the other record was still handled");
    assert.deepEqual(decided(logs.lines).map((l) => [l.decision, l.level]), [["retry", "warn"], ["started", "info"]]);

    const again = await handle(event);
    assert.deepEqual(decisions(again.outcomes), ["started", "duplicate"]);
    assert.equal(sageMaker.jobs.size, 2);
    assert.deepEqual(again.result.batchItemFailures, []);
  });

  it("a permanent CreateTransformJob rejection (unknown model) writes _FAILED.json, the metric and a dead letter", async () => {
    await run("badjob");
    const { handle, sageMaker, logs, sqs } = setup();
    sageMaker.mock.on(CreateTransformJobCommand).rejects(sageMakerError("ValidationException", "Could not find model \"fuxi-test-model-1234\".", 400));
    const { outcomes } = await handle(eventOf(markerRecord("input/badjob/_SUCCESS")));
    assert.deepEqual(decisions(outcomes), ["failed"]);
    const line = logs.lines.find((l) => l.decision === "failed")!;
    assert.equal(line.level, "error");
    assert.equal(line.RunsNotStarted, 1);
    assert.deepEqual(line.error, { name: "ValidationException", message: "Could not find model \"fuxi-test-model-1234\".", httpStatusCode: 400 });
    const failed = await readJson("output/badjob/_FAILED.json");
    assert.equal(failed.stage, "create-transform-job");
    assert.match(failed.reason as string, /ValidationException: Could not find model/);
    assert.equal(decided(logs.lines).length, 1);
    const [letter] = sqs.sent();
    assert.equal(letter.QueueUrl, TEST_ENV.DEAD_LETTER_QUEUE_URL);
    assert.equal(letter.MessageAttributes?.["fuxi-stage"].StringValue, "create-transform-job");
    assert.equal(letter.MessageAttributes?.["fuxi-run-id"].StringValue, "badjob");
  });

  it("waits when S3 cannot be reached, and dead-letters with _FAILED.json when the bucket does not exist", async () => {
    const unreachable = new S3Client({ endpoint: "http://127.0.0.1:9", region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, forcePathStyle: true, maxAttempts: 1 });
    const { handle: handleUnreachable } = setup({ s3: unreachable });
    const down = await handleUnreachable(eventOf(markerRecord("input/x/_SUCCESS")));
    assert.deepEqual(decisions(down.outcomes), ["retry"]);
    assert.equal(down.result.batchItemFailures.length, 1);
    unreachable.destroy();

    const { handle, sageMaker, sqs } = setup({ env: { ...TEST_ENV, DATA_BUCKET: "no-such-bucket-here" } });
    const { outcomes, result } = await handle(eventOf(markerRecord("input/x/_SUCCESS", { bucket: "no-such-bucket-here" })));
    assert.deepEqual(decisions(outcomes), ["failed"]);
    assert.equal(outcomes[0].error?.name, "NoSuchBucket");
    assert.equal(sageMaker.createCalls().length, 0);
    assert.deepEqual(result.batchItemFailures, []);
    assert.equal(sqs.sent()[0].QueueUrl, TEST_ENV.DEAD_LETTER_QUEUE_URL);
  });

  it("refuses to run with an invalid environment, naming the variables", async () => {
    const { handle, logs } = setup({ env: { ...TEST_ENV, MODEL_NAME: undefined as unknown as string, INVOCATION_MAX_RETRIES: "9" } });
    await assert.rejects(handle(eventOf(markerRecord("input/x/_SUCCESS"))), (error: unknown) => {
      assert.ok(error instanceof TriggerEnvError);
      assert.match(error.message, /MODEL_NAME is not set; INVOCATION_MAX_RETRIES must be a whole number from 0 to 3/);
      return true;
    });
    assert.deepEqual(logs.lines.map((l) => l.decision), ["invalid-config"]);
  });

  it("gives a long runId a valid job name of at most 63 characters", async () => {
    const runId = `${"2023101206_ensemble_member_".repeat(6)}end`;
    await run(runId);
    const { handle, sageMaker } = setup();
    const { outcomes } = await handle(eventOf(markerRecord(`input/${runId}/_SUCCESS`)));
    assert.deepEqual(decisions(outcomes), ["started"]);
    const name = [...sageMaker.jobs.keys()][0];
    assert.ok(name.length <= 63, name);
    assert.match(name, JOB_NAME_PATTERN);
    assert.equal((await readJson(`requests/${name}.json`)).runId, runId);
  });
});
