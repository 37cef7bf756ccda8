// `npm run runs` and `npm run campaign` on an async-mode stack: the run's state and times come from its
// invocation record, the endpoint's outcome files and the manifest, over the real S3 client against loopback S3.
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { SageMakerClient } from "@aws-sdk/client-sagemaker";
import { formatStatus, runStatus } from "../cli/run-status";
import type { StackOutputs } from "../cli/stack-outputs";
import { startLocalS3, LOCAL_CREDENTIALS, type LocalS3 } from "../tools/local-s3";
import { failureKey, invocationRecordKey, resultKey } from "../trigger/async-job-control";

const BUCKET = "fuxi-t-data";
const OUT: StackOutputs = { dataBucket: BUCKET, jobNamePrefix: "fuxi-t", inputPrefix: "input/", outputPrefix: "output/", requestsPrefix: "requests/", operationalQueueUrl: "q", backfillQueueUrl: "b", deadLetterQueueUrl: "d", servingMode: "async" };

describe("runs on an async-mode stack", function () {
  this.timeout(60_000);
  let s3: LocalS3;
  // Never called in async mode: the state comes from S3.
  const sageMaker = new SageMakerClient({ region: "cn-northwest-1", credentials: LOCAL_CREDENTIALS, endpoint: "http://127.0.0.1:9" });
  const put = (key: string, body: unknown) => s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: typeof body === "string" ? body : JSON.stringify(body) }));

  before(async () => {
    s3 = await startLocalS3({ buckets: [BUCKET] });
  });
  after(async () => {
    sageMaker.destroy();
    await s3?.stop();
  });

  it("shows the mode, the queue time and the outcome of each run's invocation", async () => {
    const markerAt = new Date(Date.now() - 90_000);
    for (const [runId, job, outcome] of [["a-done", "fuxi-t-a-done-0123abcd", "result"], ["a-fail", "fuxi-t-a-fail-0123abcd", "failure"], ["a-run", "fuxi-t-a-run-0123abcd", "none"]] as const) {
      await put(invocationRecordKey("requests/", job), { jobName: job, claimedAt: new Date(markerAt.getTime() + 30_000).toISOString(), invokedAt: new Date(markerAt.getTime() + 30_000).toISOString(), inferenceId: job });
      if (outcome === "result") await put(resultKey("output/", job), "{}");
      if (outcome === "failure") await put(failureKey("output/", job), '{"error":"bad"}');
    }
    await put("output/a-done/_SUCCESS", { steps: 20 });
    const line = async (runId: string) => formatStatus(await runStatus({ s3: s3.client, sageMaker }, OUT, { runId, markerAt }));
    assert.match(await line("a-done"), /^a-done\s+done\s+async fuxi-t-a-done-0123abcd Completed\s+0\/20 steps\s+0m30s\s+\d+m\d\ds$/);
    assert.match(await line("a-fail"), /^a-fail\s+failed\s+async fuxi-t-a-fail-0123abcd Failed .*the endpoint wrote output\/_async\/failures\/fuxi-t-a-fail-0123abcd-error\.out$/);
    assert.match(await line("a-run"), /^a-run\s+running\s+async fuxi-t-a-run-0123abcd InProgress/);
    assert.match(await line("a-none"), /^a-none\s+queued\s+async -/);
  });

  describe("campaign estimate", () => {
    const costModel = { prices: { currency: "CNY", instanceHour: { "ml.g5.2xlarge": 10 }, endpointInstanceHour: { "ml.g5.2xlarge": 18 }, storageGbMonth: { STANDARD: 0.2 } }, instanceType: "ml.g5.2xlarge", instanceCount: 2, invocationTimeoutSeconds: 3600, runsPerDay: 4, steps: 60, compression: "none", noncurrentDays: 7, retention: { expireAfterDays: 30 } };
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "fuxi-campaign-async-"));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    /** A stack of its own (prefixes under `name/`) with two runs to enqueue; the CLI's stdout, refused (no --yes). */
    async function campaignOn(name: string, setUp: (stack: StackOutputs) => Promise<void>): Promise<string> {
      const stack: StackOutputs = { ...OUT, jobNamePrefix: `fuxi-${name}`, inputPrefix: `${name}/input/`, outputPrefix: `${name}/output/`, requestsPrefix: `${name}/requests/` };
      for (const runId of ["2025010100", "2025010106"]) {
        await put(`${stack.inputPrefix}${runId}/in.nc`, runId);
        await put(`${stack.inputPrefix}${runId}/_SUCCESS`, "");
      }
      await setUp(stack);
      const outputsFile = join(dir, `${name}.json`);
      await writeFile(outputsFile, JSON.stringify({ ...stack, costModel }));
      // SageMaker and SQS are not reachable: the async estimate reads S3 only, and nothing is sent unasked.
      const env = { ...process.env, ...s3.env, AWS_ENDPOINT_URL_SAGEMAKER: "http://127.0.0.1:9", AWS_ENDPOINT_URL_SQS: "http://127.0.0.1:9" };
      const run = await promisify(execFile)(process.execPath, ["--import", "tsx", "cli/campaign.ts", "--outputs", outputsFile, "--runs", "2025010100,2025010106", "--no-wait"], { env, cwd: join(__dirname, "..") })
        .then((r) => ({ code: 0, stdout: r.stdout }), (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: `${e.stdout}${e.stderr}` }));
      assert.equal(run.code, 1, run.stdout);
      assert.match(run.stdout, /2 run\(s\): 2 to enqueue[\s\S]*\nnothing enqueued/);
      return run.stdout;
    }

    /** One invocation of `runId` by `jobName`: its record, the endpoint's outcome and the run's manifest. */
    async function invocation(stack: StackOutputs, runId: string, jobName: string, o: { outcome: "result" | "failure" | "none"; seconds?: number; manifestJob?: string }) {
      const startedAt = Date.parse("2024-12-31T00:00:00Z");
      await put(`${stack.requestsPrefix}${jobName}.json`, { jobName, runId });
      await put(invocationRecordKey(stack.requestsPrefix, jobName), { jobName, claimedAt: new Date(startedAt).toISOString(), invokedAt: new Date(startedAt).toISOString(), inferenceId: jobName });
      if (o.outcome === "result") await put(resultKey(stack.outputPrefix, jobName), "{}");
      if (o.outcome === "failure") await put(failureKey(stack.outputPrefix, jobName), '{"error":"bad"}');
      if (o.seconds !== undefined) {
        // visibleSeconds counts the warm instance's earlier minutes: the estimate must not use it.
        const usage = { visibleSeconds: 9999, bytesWritten: 1, bytesStored: 1, instanceType: "ml.g5.2xlarge", instanceCount: 1, invocationStartedAt: new Date(startedAt).toISOString(), invocationEndedAt: new Date(startedAt + o.seconds * 1000).toISOString() };
        await put(`${stack.outputPrefix}${runId}/_SUCCESS`, { jobName: o.manifestJob ?? jobName, steps: 60, usage });
      }
    }

    it("takes the mean processing time of the latest completed invocations from their manifests", async () => {
      const stdout = await campaignOn("measured", async (stack) => {
        await invocation(stack, "2024123100", "fuxi-measured-2024123100-0123abcd", { outcome: "result", seconds: 1200 });
        await invocation(stack, "2024123106", "fuxi-measured-2024123106-0123abcd", { outcome: "result", seconds: 2700 });
        // Not measured: failed, still running, and a completed invocation whose run was redone by a later job.
        await invocation(stack, "2024123112", "fuxi-measured-2024123112-0123abcd", { outcome: "failure", seconds: 60 });
        await invocation(stack, "2024123118", "fuxi-measured-2024123118-0123abcd", { outcome: "none", seconds: 60 });
        await invocation(stack, "2024123000", "fuxi-measured-2024123000-0123abcd", { outcome: "result", seconds: 60, manifestJob: "fuxi-measured-2024123000-4567cdef" });
      });
      // (1200 + 2700) / 2 = 1950 s = 32 min 30 s per run; 2 runs x 1950 s = 1.083 instance-hours x CNY 18 = 19.50.
      assert.match(stdout, /\n {2}GPU time {8}1\.1 instance-hours on ml\.g5\.2xlarge behind the async endpoint \(mean processing time of the latest 2 completed async invocations \(32 min 30 s each\)\)\n/);
      assert.match(stdout, /\n {2}instance cost {3}CNY 19\.50 at the endpoint price/);
    });

    it("falls back to the stated assumption when no invocation completed", async () => {
      const stdout = await campaignOn("unmeasured", async (stack) => {
        await invocation(stack, "2024123100", "fuxi-unmeasured-2024123100-0123abcd", { outcome: "failure", seconds: 60 });
      });
      // 2 runs x (10 min start-up + 60 min timeout) = 2.333 instance-hours x CNY 18 = 42.00.
      assert.match(stdout, /\n {2}GPU time {8}2\.3 instance-hours on ml\.g5\.2xlarge behind the async endpoint \(assumed 1 h 10 min per run \(10 min 00 s start-up \+ the 1 h 00 min invocation timeout, an upper bound\): no finished run of this stack measured yet\)\n/);
      assert.match(stdout, /\n {2}instance cost {3}CNY 42\.00 at the endpoint price/);
    });
  });
});
