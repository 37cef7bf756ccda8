// Concurrency, /ping latency under load, and kill → resume with byte-identical output.
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { startLocalS3, type LocalS3 } from "../tools/local-s3";
import { writeStandinModels } from "../tools/standin-model";
import { RUNTIME_LOG_EVENTS, type Manifest } from "../runtime/src/contract";
import { forecastRequest, http, startRuntimeChild, tempDir, writeInputWithXarray, type RuntimeChild } from "./support/runtime-harness";

const BUCKET = "fuxi-data";
const INIT = new Date("2023-10-12T06:00:00Z");
const CASCADE = [20, 20, 20];

async function getBytes(s3: LocalS3, key: string): Promise<Buffer> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await response.Body!.transformToByteArray());
}

async function stepFiles(s3: LocalS3, runId: string): Promise<string[]> {
  const listing = await s3.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `output/${runId}/` }));
  return (listing.Contents ?? []).map((o) => o.Key!.slice(`output/${runId}/`.length)).filter((name) => name.endsWith(".nc"));
}

describe("runtime server: concurrency, ping latency, kill and resume", function () {
  this.timeout(300_000);
  const grid = { lat: 48, lon: 96 };
  let work: string;
  let s3: LocalS3;
  let runtime: RuntimeChild;
  let whole: Manifest;

  before(async () => {
    work = await tempDir("runtime-resume");
    await writeStandinModels(join(work, "models"), grid);
    s3 = await startLocalS3({ buckets: [BUCKET] });
    const input = await writeInputWithXarray(join(work, "input.nc"), { ...grid, initTime: INIT });
    for (const runId of ["whole", "killed"]) {
      await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `input/${runId}/fuxi_input.nc`, Body: input }));
    }
    runtime = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: join(work, "models") });
    await runtime.waitUntilReady();
  });

  after(async () => {
    await runtime?.stop("SIGKILL");
    await s3?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("answers a second concurrent invocation with 429 and /ping well inside SageMaker's 2 s ping timeout during a run", async () => {
    const running = http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("whole", CASCADE)));
    let finished = false;
    running.finally(() => (finished = true)).catch(() => undefined);
    await runtime.waitForLog((line) => line.event === RUNTIME_LOG_EVENTS.stepDone && line.step === 1);

    const second = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("killed", CASCADE)));
    assert.equal(second.status, 429);
    const runningJob = String(forecastRequest("whole", CASCADE).jobName);
    assert.ok(JSON.parse(second.body).error.includes(`already running (job ${runningJob})`), second.body);
    assert.match(JSON.parse(second.body).error, /one invocation at a time/);

    const latencies: number[] = [];
    while (!finished) {
      const ping = await http("GET", `${runtime.url}/ping`);
      assert.equal(ping.status, 200);
      latencies.push(ping.ms);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const response = await running;
    assert.equal(response.status, 200, response.body);
    whole = JSON.parse(response.body);
    assert.ok(latencies.length >= 20, `only ${latencies.length} pings during the run`);
    const worst = Math.max(...latencies);
    // The contract is SageMaker's 2 s ping timeout; seconds of synchronous work on the main thread (a
    // model load, an encode, a hash) would exceed half of it. The typical latency is a benchmark figure
    // (bench:runtime samples /ping), not a timed test: on a loaded 2-core machine it reached 100-700 ms.
    assert.ok(worst < 1000, `slowest /ping during the run took ${worst.toFixed(1)} ms`);
  });

  it("resumes a run killed mid-way and produces byte-identical files", async () => {
    const request = JSON.stringify(forecastRequest("killed", CASCADE));
    const doomed = http("POST", `${runtime.url}/invocations`, request).catch((error: Error) => error);
    // Kill as soon as step 5 is logged as uploaded: no graceful anything, as when an instance dies.
    await runtime.waitForLog((line) => line.event === RUNTIME_LOG_EVENTS.stepDone && line.runId === "killed" && typeof line.step === "number" && line.step >= 5, 120_000);
    await runtime.stop("SIGKILL");
    const outcome = await doomed;
    assert.ok(outcome instanceof Error, `the killed invocation got no response, but got ${JSON.stringify(outcome)}`);
    const partial = await stepFiles(s3, "killed");
    assert.ok(partial.length >= 6 && partial.length < 60, `${partial.length} step files after the kill; the test needs a run that is killed part-way`);
    await assert.rejects(getBytes(s3, "output/killed/_SUCCESS"), /NoSuchKey|not exist/);

    runtime = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: join(work, "models") });
    await runtime.waitUntilReady();
    const response = await http("POST", `${runtime.url}/invocations`, request);
    assert.equal(response.status, 200, response.body);
    const resumed: Manifest = JSON.parse(response.body);
    assert.ok(resumed.resumedFromStep >= 5 && resumed.resumedFromStep < 60, `resumed from step ${resumed.resumedFromStep}`);
    assert.equal(resumed.files.filter((f) => f.resumed).length, resumed.resumedFromStep);
    assert.equal(runtime.logs.filter((line) => line.event === RUNTIME_LOG_EVENTS.stepDone).length, 60 - resumed.resumedFromStep, "only the missing steps ran");
    // usage counts only what this invocation wrote; bytesStored is the whole run.
    assert.deepEqual([resumed.usage.stepsResumed, resumed.usage.stepsComputed], [resumed.resumedFromStep, 60 - resumed.resumedFromStep]);
    assert.equal(resumed.usage.bytesWritten, resumed.files.filter((f) => !f.resumed).reduce((a, f) => a + f.bytes, 0));
    assert.equal(resumed.usage.bytesStored, resumed.files.reduce((a, f) => a + f.bytes, 0));
    assert.ok(resumed.usage.bytesWritten < resumed.usage.bytesStored);
    assert.equal(runtime.logs.filter((line) => line.event === RUNTIME_LOG_EVENTS.stepDone).length, 60 - resumed.resumedFromStep, "only the missing steps ran");

    assert.deepEqual(resumed.files.map((f) => [f.file, f.bytes, f.sha256]), whole.files.map((f) => [f.file, f.bytes, f.sha256]), "same files, sizes and SHA-256");
    for (const file of whole.files) {
      const [a, b] = await Promise.all([getBytes(s3, `output/whole/${file.file}`), getBytes(s3, `output/killed/${file.file}`)]);
      assert.ok(a.equals(b), `${file.file} differs between the uninterrupted and the resumed run`);
    }
  });

  it("a replacing run killed part-way leaves no mixture: no _SUCCESS, only step files of the new request", async () => {
    const before = await stepFiles(s3, "whole");
    assert.equal(before.length, 60);
    const doomed = http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("whole", CASCADE, { compression: "gzip" }))).catch((error: Error) => error);
    await runtime.waitForLog((line) => line.event === RUNTIME_LOG_EVENTS.stepDone && line.runId === "whole" && (line.step as number) >= 2 && line.sha256 !== whole.files[line.step as number].sha256, 120_000);
    await runtime.stop("SIGKILL");
    assert.ok((await doomed) instanceof Error);
    await assert.rejects(getBytes(s3, "output/whole/_SUCCESS"), /NoSuchKey|not exist/);
    const left = await stepFiles(s3, "whole");
    assert.ok(left.length >= 3 && left.length < 60, `${left.length} step files left`);
    for (const name of left) {
      const head = await s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `output/whole/${name}` }));
      assert.notEqual(head.Metadata?.["fuxi-fingerprint"], whole.fingerprint, `${name} is a file of the replaced run`);
    }
    runtime = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: join(work, "models") });
    await runtime.waitUntilReady();
  });
});
