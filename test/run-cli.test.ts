import assert from "node:assert/strict";
import { HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { ListTransformJobsCommand, SageMakerClient } from "@aws-sdk/client-sagemaker";
import { SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { campaignRunIds, enqueueRun } from "../cli/campaign";
import { replayDeadLetters } from "../cli/replay";
import { formatStatus, listRunIds, runStatus } from "../cli/run-status";
import { parseDuration, parseStackOutputs, type StackOutputs } from "../cli/stack-outputs";
import { startLocalS3, type LocalS3 } from "../tools/local-s3";
import { startLocalSqs, type LocalSqs } from "../tools/local-sqs";

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
    const runs = await listRunIds(s3.client, out);
    const statuses = Object.fromEntries(await Promise.all(runs.map(async (r) => [r.runId, await runStatus({ s3: s3.client, sageMaker }, out, r)] as const)));
    assert.equal(statuses["r-run"].state, "running");
    assert.deepEqual([statuses["r-run"].stepsWritten, statuses["r-run"].stepsExpected], [1, 20]);
    assert.ok(statuses["r-run"].wallSeconds! >= 90);
    assert.match(formatStatus(statuses["r-run"]), /^r-run\s+running fuxi-t-r-run-0123abcd InProgress\s+1\/20 steps\s+1m3\ds$/);
    assert.equal(statuses["r-failed"].state, "failed");
    assert.match(formatStatus(statuses["r-failed"]), /expected exactly one \.nc, found 0$/);
    assert.equal(statuses["2024010100"].state, "queued");
    assert.equal(statuses["2024010106"].state, "done", "a manifest and no job: done (the campaign, not the status, compares it with the input)");
    sageMaker.destroy();
  });
});
