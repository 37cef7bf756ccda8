// `npm run runs` on an async-mode stack: the run's state and times come from its invocation record
// and the endpoint's outcome files, over the real S3 client against loopback S3.
import { strict as assert } from "node:assert";
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
});
