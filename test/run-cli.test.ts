import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { DescribeTransformJobCommand, ListTransformJobsCommand, SageMakerClient } from "@aws-sdk/client-sagemaker";
import { SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { campaignEstimateLines, campaignRunIds, enqueueRun } from "../cli/campaign";
import { replayDeadLetters } from "../cli/replay";
import { formatRunsTable, formatStatus, listRunIds, runStatus } from "../cli/run-status";
import { parseDuration, parseStackOutputs, type StackOutputs } from "../cli/stack-outputs";
import { startLocalS3, type LocalS3 } from "../tools/local-s3";
import { startLocalSqs, type LocalSqs } from "../tools/local-sqs";
import { startTransformRunner } from "../local/transform-runner";

const BUCKET = "fuxi-cli-test";

describe("campaign and runs CLIs (real SDK against loopback S3 and SQS)", function () {
  this.timeout(60_000);
  let s3: LocalS3;
  let sqsServer: LocalSqs;
  let sqs: SQSClient;
  let out: StackOutputs;
  before(async () => {
    s3 = await startLocalS3({ buckets: [BUCKET] });
    sqsServer = await startLocalSqs();
    for (const name of ["fuxi-t-runs", "fuxi-t-backfill", "fuxi-t-runs-dlq"]) sqsServer.model.createQueue({ name });
    sqs = new SQSClient({ endpoint: sqsServer.endpoint, region: "cn-northwest-1", credentials: { accessKeyId: "x", secretAccessKey: "x" } });
    out = parseStackOutputs({
      dataBucket: BUCKET, jobNamePrefix: "fuxi-t", inputPrefix: "input/", outputPrefix: "output/", requestsPrefix: "requests/",
      operationalQueueUrl: sqsServer.queueUrl("fuxi-t-runs"), backfillQueueUrl: sqsServer.queueUrl("fuxi-t-backfill"), deadLetterQueueUrl: sqsServer.queueUrl("fuxi-t-runs-dlq"),
      imageUri: "ignored",
    }, "test");
  });
  after(async () => {
    sqs.destroy();
    await sqsServer.stop();
    await s3.stop();
  });
  const put = (key: string, body: string) => s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));

  it("plans run ids from a range and rejects bad times and outputs by name", () => {
    assert.deepEqual(campaignRunIds("2024-01-01T00", "2024-01-01T18", parseDuration("6h", "--every")), ["2024010100", "2024010106", "2024010112", "2024010118"]);
    assert.equal(campaignRunIds("2024-01-01T00", "2024-03-31T18", 6 * 3600_000).length, 91 * 4);
    assert.throws(() => campaignRunIds("2024-02-30T00", "2024-03-01T00", 3600_000), /--from must be a UTC time YYYY-MM-DDTHH/);
    assert.throws(() => parseDuration("6 hours", "--every"), /--every must look like 30m, 6h or 2d/);
    assert.throws(() => parseStackOutputs({ dataBucket: "b" }, "stack dev"), /stack dev lacks the outputs jobNamePrefix, inputPrefix/);
  });

  it("campaign: enqueues runs with input, skips those whose manifest matches and those without a marker", async () => {
    await put("input/2024010100/in.nc", "a");
    await put("input/2024010100/_SUCCESS", "");
    await put("input/2024010106/in.nc", "b");
    await put("input/2024010106/_SUCCESS", "");
    const etag = (await s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "input/2024010106/in.nc" }))).ETag!;
    await put("output/2024010106/_SUCCESS", JSON.stringify({ input: `s3://${BUCKET}/input/2024010106/in.nc`, inputETag: etag.replace(/"/g, ""), steps: 2 }));
    const decisions = [];
    for (const runId of ["2024010100", "2024010106", "2024010112"]) decisions.push(await enqueueRun({ s3: s3.client, sqs }, out, "c1", runId));
    assert.deepEqual(decisions, ["enqueued", "skipped-done", "missing-input"]);
    const [message] = sqsServer.model.peek("fuxi-t-backfill");
    const body = JSON.parse(message.body);
    assert.equal(body.kind, "fuxi.backfill-run");
    assert.equal(body.marker.key, "input/2024010100/_SUCCESS");
    assert.match(body.marker.sequencer, /^campaign-[0-9a-f]+-/, "unversioned bucket: LastModified and ETag identify the upload");
    // A changed input no longer matches its manifest.
    await put("input/2024010106/in.nc", "changed");
    assert.equal(await enqueueRun({ s3: s3.client, sqs }, out, "c1", "2024010106"), "enqueued");
  });

  it("replay: dead letters go back to the queue of their lane, the dead-letter queue ends empty", async () => {
    sqsServer.model.send("fuxi-t-runs-dlq", "{\"Records\":[]}", { "fuxi-lane": { DataType: "String", StringValue: "operational" } });
    sqsServer.model.send("fuxi-t-runs-dlq", "{\"kind\":\"fuxi.backfill-run\"}", { "fuxi-lane": { DataType: "String", StringValue: "backfill" } });
    const before = sqsServer.model.peek("fuxi-t-backfill").length;
    assert.deepEqual(await replayDeadLetters(sqs, out), { operational: 1, backfill: 1 });
    assert.equal(sqsServer.model.peek("fuxi-t-runs-dlq").length, 0);
    assert.equal(sqsServer.model.peek("fuxi-t-runs").length, 1);
    assert.equal(sqsServer.model.peek("fuxi-t-backfill").length, before + 1);
  });

  it("runs: one line per run from S3 and SageMaker (queued, running, done, failed with the reason)", async () => {
    await put("input/r-run/in.nc", "x"); await put("input/r-run/_SUCCESS", "");
    await put("input/r-failed/_SUCCESS", "");
    await put("output/r-failed/_FAILED.json", JSON.stringify({ reason: "expected exactly one .nc, found 0", failedAt: new Date(Date.now() + 1000).toISOString() }));
    await put("output/r-run/006.nc", "s"); await put("requests/fuxi-t-r-run-0123abcd.json", JSON.stringify({ cascadeSteps: [20] }));
    const sageMaker = new SageMakerClient({ region: "cn-northwest-1", credentials: { accessKeyId: "x", secretAccessKey: "x" } });
    const mock = mockClient(sageMaker);
    mock.on(ListTransformJobsCommand).callsFake((input: { NameContains: string }) => ({
      TransformJobSummaries: input.NameContains === "fuxi-t-r-run-" ? [{ TransformJobName: "fuxi-t-r-run-0123abcd", TransformJobStatus: "InProgress", CreationTime: new Date(Date.now() - 90_000), TransformJobArn: "a" }] : [],
    }));
    mock.on(DescribeTransformJobCommand).resolves({ TransformJobName: "fuxi-t-r-run-0123abcd", TransformJobStatus: "InProgress", TransformResources: { InstanceType: "ml.g5.2xlarge", InstanceCount: 1 } });
    const runs = await listRunIds(s3.client, out);
    const statuses = Object.fromEntries(await Promise.all(runs.map(async (r) => [r.runId, await runStatus({ s3: s3.client, sageMaker }, out, r)] as const)));
    assert.equal(statuses["r-run"].state, "running");
    assert.deepEqual([statuses["r-run"].stepsWritten, statuses["r-run"].stepsExpected], [1, 20]);
    assert.ok(statuses["r-run"].wallSeconds! >= 90);
    assert.match(formatStatus(statuses["r-run"]), /^r-run\s+running batch fuxi-t-r-run-0123abcd InProgress\s+1\/20 steps\s+\d+m\d\ds\s+1m3\ds$/);
    assert.equal(statuses["r-failed"].state, "failed");
    assert.match(formatStatus(statuses["r-failed"]), /expected exactly one \.nc, found 0$/);
    assert.equal(statuses["2024010100"].state, "queued");
    assert.equal(statuses["2024010106"].state, "done", "a manifest and no job: done (the campaign, not the status, compares it with the input)");
    sageMaker.destroy();
  });

  it("runs: GPU minutes from SageMaker's billed window (else the manifest's visible part, marked ≥), output size and cost, with totals", async () => {
    const gib = 2 ** 30;
    const usage = (visibleSeconds: number) => ({ visibleSeconds, bytesWritten: gib, bytesStored: gib, instanceType: "ml.g5.2xlarge", instanceCount: 1 });
    await put("input/c-billed/in.nc", "x"); await put("input/c-billed/_SUCCESS", "");
    await put("output/c-billed/_SUCCESS", JSON.stringify({ steps: 60, usage: usage(1500) }));
    await put("input/c-visible/in.nc", "x"); await put("input/c-visible/_SUCCESS", "");
    await put("output/c-visible/_SUCCESS", JSON.stringify({ steps: 60, usage: usage(600) }));
    const sageMaker = new SageMakerClient({ region: "cn-northwest-1", credentials: { accessKeyId: "x", secretAccessKey: "x" } });
    const mock = mockClient(sageMaker);
    const start = new Date("2026-12-01T00:00:00Z");
    mock.on(ListTransformJobsCommand).callsFake((input: { NameContains: string }) => ({
      TransformJobSummaries: input.NameContains === "fuxi-t-c-billed-" ? [{ TransformJobName: "fuxi-t-c-billed-0123abcd", TransformJobStatus: "Completed", CreationTime: start, TransformEndTime: new Date(start.getTime() + 1_800_000), TransformJobArn: "a" }] : [],
    }));
    // 30 minutes billed (provisioning included): more than the 25 the container saw.
    mock.on(DescribeTransformJobCommand).resolves({ TransformJobStatus: "Completed", TransformStartTime: start, TransformEndTime: new Date(start.getTime() + 1_800_000), TransformResources: { InstanceType: "ml.g5.2xlarge", InstanceCount: 1 } });
    const statuses = [];
    for (const runId of ["c-billed", "c-visible"]) statuses.push(await runStatus({ s3: s3.client, sageMaker }, out, { runId }));
    sageMaker.destroy();
    // Storage priced at 0 so the figures are the instance's alone: 0.5 h x 10 = 5.00, 10 min x 10 / 60 = 1.67.
    const costModel = { prices: { currency: "CNY", instanceHour: { "ml.g5.2xlarge": 10 }, storageGbMonth: { STANDARD: 0 } }, instanceType: "ml.g5.2xlarge", instanceCount: 1, invocationTimeoutSeconds: 3600, runsPerDay: 4, steps: 60, compression: "none" as const, noncurrentDays: 7, retention: { expireAfterDays: 30 } };
    const [header, billed, visible, total] = formatRunsTable(statuses, costModel);
    assert.match(header, /GPU min\s+output\s+cost$/);
    assert.match(billed, /^c-billed\s+done\s+batch fuxi-t-c-billed-0123abcd Completed .* 30\.0\s+1\.00 GiB\s+CNY 5\.00$/);
    assert.match(visible, /^c-visible\s+done\s+batch\s+-\s+.* ≥10\.0\s+1\.00 GiB\s+CNY 1\.67$/);
    assert.equal(total, "total: 40.0 GPU minutes, 2.00 GiB of output, CNY 6.67 (1 run(s) counted with the runtime's visible time only (no SageMaker times yet), a lower bound)");
    // Without prices, or a stack that predates the costModel output, the table says so instead of a number.
    assert.match(formatRunsTable(statuses, { ...costModel, prices: null }).at(-1)!, /^total: 40\.0 GPU minutes, 2\.00 GiB of output, cost unknown: set fuxi:cost/);
    assert.match(formatRunsTable(statuses, undefined).at(-1)!, /cost unknown: the stack has no costModel output/);
  });

  it("runs: an async run is priced by its processing time at the endpoint price; the warm minutes are said to be billed apart", async () => {
    const asyncOut: StackOutputs = { ...out, servingMode: "async" };
    const at = (m: number) => new Date(Date.UTC(2026, 11, 1, 3, 20 + m)).toISOString();
    const job = "fuxi-t-a-priced-0123abcd";
    await put("input/a-priced/in.nc", "x"); await put("input/a-priced/_SUCCESS", "");
    await put(`requests/_async/${job}.json`, JSON.stringify({ jobName: job, claimedAt: at(0), invokedAt: at(0), inferenceId: job }));
    await put(`output/_async/results/${job}.out`, "{}");
    // The instance had been warm since the window opened (visibleSeconds 3000 s); the invocation took 40 minutes.
    await put("output/a-priced/_SUCCESS", JSON.stringify({ steps: 60, usage: { visibleSeconds: 3000, bytesWritten: 2 ** 30, bytesStored: 2 ** 30, instanceType: "ml.g5.2xlarge", instanceCount: 1, invocationStartedAt: at(10), invocationEndedAt: at(50) } }));
    const sageMaker = new SageMakerClient({ region: "cn-northwest-1", credentials: { accessKeyId: "x", secretAccessKey: "x" }, endpoint: "http://127.0.0.1:9" });
    const status = await runStatus({ s3: s3.client, sageMaker }, asyncOut, { runId: "a-priced" });
    sageMaker.destroy();
    // Storage priced at 0: 40 min x CNY 18 per endpoint instance-hour = 12.00 (the transform price, 10, would give 6.67).
    const costModel = { prices: { currency: "CNY", instanceHour: { "ml.g5.2xlarge": 10 }, endpointInstanceHour: { "ml.g5.2xlarge": 18 }, storageGbMonth: { STANDARD: 0 } }, instanceType: "ml.g5.2xlarge", instanceCount: 1, invocationTimeoutSeconds: 3600, runsPerDay: 4, steps: 60, compression: "none" as const, noncurrentDays: 7, retention: { expireAfterDays: 30 } };
    const [, line, total] = formatRunsTable([status], costModel);
    assert.match(line!, /^a-priced\s+done\s+async fuxi-t-a-priced-0123abcd Completed .* 40\.0\s+1\.00 GiB\s+CNY 12\.00$/);
    assert.equal(total, "total: 40.0 GPU minutes, 1.00 GiB of output, CNY 12.00 (1 async run(s) counted with their processing time at the endpoint price; the endpoint's warm windows, start-ups and idle minutes before scale-in are billed separately (pulumi stack output steadyStateStorage: perDay.warm))");
    // A stack deployed before endpointInstanceHour existed: its costModel still parses, the async price is named as missing.
    const old = parseStackOutputs({ ...asyncOut, costModel: { ...costModel, prices: { currency: "CNY", instanceHour: { "ml.g5.2xlarge": 10 }, storageGbMonth: { STANDARD: 0 } } } }, "stack old");
    assert.equal(old.costModel!.prices!.endpointInstanceHour, undefined);
    assert.match(formatRunsTable([status], old.costModel).at(-1)!, /^total: 40\.0 GPU minutes, 1\.00 GiB of output, cost unknown: set fuxi:cost \(fuxi:cost\.endpointInstanceHour\["ml\.g5\.2xlarge"\]; docs\/cost\.md\)/);
  });

  it("stack outputs: a costModel is read with nulls as absent, a malformed one is named", () => {
    const base = { dataBucket: BUCKET, jobNamePrefix: "fuxi-t", inputPrefix: "input/", outputPrefix: "output/", requestsPrefix: "requests/", operationalQueueUrl: "q1", backfillQueueUrl: "q2", deadLetterQueueUrl: "q3" };
    const model = { prices: null, instanceType: "ml.g5.2xlarge", instanceCount: 1, invocationTimeoutSeconds: 3600, runsPerDay: 4, steps: 60, compression: "none", noncurrentDays: 7, retention: null };
    const parsed = parseStackOutputs({ ...base, costModel: model }, "stack dev");
    assert.equal(parsed.costModel!.retention, undefined);
    assert.equal(parsed.costModel!.prices, null);
    assert.throws(() => parseStackOutputs({ ...base, costModel: null }, "stack dev"), /stack dev has a costModel output that is null, not an object/);
    assert.throws(() => parseStackOutputs({ ...base, costModel: { ...model, steps: "60" } }, "stack dev"), /stack dev has a costModel output without steps/);
    const prices = { currency: "CNY", instanceHour: {}, storageGbMonth: {} };
    assert.deepEqual(parseStackOutputs({ ...base, costModel: { ...model, prices } }, "stack dev").costModel!.prices, prices, "prices without endpointInstanceHour (older stacks) are kept as they are");
    assert.throws(() => parseStackOutputs({ ...base, costModel: { ...model, prices: { ...prices, endpointInstanceHour: 18, instanceHour: undefined } } }, "stack dev"), /stack dev has a costModel output without prices\.instanceHour, prices\.endpointInstanceHour/);
  });

  it("campaign estimate: GPU hours from measured runs (else the stated assumption), cost and storage before anything is enqueued", () => {
    const model = { prices: { currency: "CNY", instanceHour: { "ml.g5.2xlarge": 10 }, storageGbMonth: { STANDARD: 0.2 } }, instanceType: "ml.g5.2xlarge", instanceCount: 1, invocationTimeoutSeconds: 3600, runsPerDay: 4, steps: 60, compression: "none" as const, noncurrentDays: 7, retention: { expireAfterDays: 30 } };
    // 10 runs x 30 min measured = 5 instance-hours x CNY 10; 10 x 60 x 290,746,611 B = 162.5 GiB,
    // x 0.2 for the first month = 32.49, x (30 + 7 noncurrent days) / 30.4375 x 0.2 = 39.50 over its life.
    assert.deepEqual(campaignEstimateLines(10, [1800, 1800], model), [
      "runs            10",
      "GPU time        5.0 instance-hours on ml.g5.2xlarge (mean of 2 measured runs (30 min 00 s each))",
      "instance cost   CNY 50.00",
      "storage         162 GiB (60 steps x 277 MiB per step)",
      "storage cost    CNY 32.49 for the first month; CNY 39.50 over the retention",
      "total           CNY 89.50",
    ]);
    const assumed = campaignEstimateLines(10, [], { ...model, prices: null });
    assert.match(assumed[1]!, /^GPU time        11\.7 instance-hours .*assumed 1 h 10 min per run \(10 min 00 s start-up \+ the 1 h 00 min invocation timeout, an upper bound\): no finished run of this stack measured yet\)$/);
    assert.match(assumed[2]!, /cost unknown: set fuxi:cost/);
    assert.match(campaignEstimateLines(3, [], undefined)[1]!, /no costModel output/);
    // An async stack: one endpoint instance per run at the endpoint price (10 x 30 min x 18 = 90.00), the warm windows billed apart.
    const onEndpoint = campaignEstimateLines(10, [1800], { ...model, instanceCount: 2, prices: { ...model.prices, endpointInstanceHour: { "ml.g5.2xlarge": 18 } } }, "async");
    assert.equal(onEndpoint[1], "GPU time        5.0 instance-hours on ml.g5.2xlarge behind the async endpoint (mean processing time of the latest 1 completed async invocation (30 min 00 s each))");
    assert.equal(onEndpoint[2], "instance cost   CNY 90.00 at the endpoint price; the warm windows are billed apart, every day (pulumi stack output steadyStateStorage: perDay.warm)");
  });

  it("campaign CLI: prints the estimate and enqueues nothing unasked (no terminal, no --yes); --yes enqueues", async () => {
    await put("input/2025010100/in.nc", "a"); await put("input/2025010100/_SUCCESS", "");
    await put("input/2025010106/in.nc", "b"); await put("input/2025010106/_SUCCESS", "");
    // A loopback SageMaker control plane with no jobs yet: the estimate falls back to its stated assumption.
    const sageMaker = await startTransformRunner({ s3: s3.client, models: {}, launch: () => Promise.reject(new Error("no job runs in this test")) });
    const dir = await mkdtemp(join(tmpdir(), "fuxi-campaign-cli-"));
    const outputsFile = join(dir, "outputs.json");
    const costModel = { prices: { currency: "CNY", instanceHour: { "ml.g5.2xlarge": 10 }, storageGbMonth: { STANDARD: 0.2 } }, instanceType: "ml.g5.2xlarge", instanceCount: 1, invocationTimeoutSeconds: 3600, runsPerDay: 4, steps: 60, compression: "none", noncurrentDays: 7, retention: { expireAfterDays: 30 } };
    await writeFile(outputsFile, JSON.stringify({ ...out, costModel }));
    const env = { ...process.env, ...s3.env, AWS_ENDPOINT_URL_SQS: sqsServer.endpoint, AWS_ENDPOINT_URL_SAGEMAKER: sageMaker.endpoint };
    const campaign = (extra: string[]) =>
      promisify(execFile)(process.execPath, ["--import", "tsx", "cli/campaign.ts", "--outputs", outputsFile, "--runs", "2025010100,2025010106", "--no-wait", ...extra], { env, cwd: join(__dirname, "..") })
        .then((r) => ({ code: 0, stdout: r.stdout }), (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }));
    const before = sqsServer.model.peek("fuxi-t-backfill").length;
    try {
      const refused = await campaign([]);
      assert.equal(refused.code, 1, refused.stdout);
      assert.match(refused.stdout, /2 run\(s\): 2 to enqueue/);
      assert.match(refused.stdout, /GPU time {8}2\.3 instance-hours on ml\.g5\.2xlarge \(assumed 1 h 10 min per run/);
      assert.match(refused.stdout, /instance cost {3}CNY 23\.33/);
      assert.match(refused.stdout, /Enqueue 2 run\(s\) on the backfill queue\? \[y\/N\] no answer possible \(no terminal\); pass --yes to go on\nnothing enqueued/);
      assert.equal(sqsServer.model.peek("fuxi-t-backfill").length, before, "nothing sent without an answer");
      assert.ok(sageMaker.operations().includes("ListTransformJobs"), "the estimate looked for measured runs");
      const accepted = await campaign(["--yes"]);
      assert.equal(accepted.code, 0, accepted.stdout);
      assert.match(accepted.stdout, /enqueued 2 run\(s\)/);
      assert.equal(sqsServer.model.peek("fuxi-t-backfill").length, before + 2);
    } finally {
      await sageMaker.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
