// The runtime server end to end: a child process (as the local pipeline starts it) against
// s3rver on loopback, stand-in ONNX models, inputs written by xarray, outputs read by ncdump,
// xarray and the runtime's own reader.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { chmod, chown, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { createHash } from "node:crypto";
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { startLocalS3, type LocalS3 } from "../tools/local-s3";
import { editOnnxModel, STAGES, standinReferenceStep, writeStandinModels } from "../tools/standin-model";
import { readForecastStep } from "../runtime/src/netcdf";
import { stageSchedule, stepFileName } from "../runtime/src/contract";
import { timeEmbedding } from "../runtime/src/time-embedding";
import { RUNTIME_LOG_EVENTS, type Manifest } from "../runtime/src/contract";
import { forecastRequest, freePort, http, python, REPO_ROOT, startRuntimeChild, syntheticWindow, tempDir, TSX_ENTRY, writeInputWithXarray, type RuntimeChild } from "./support/runtime-harness";

const run = promisify(execFile);
const BUCKET = "fuxi-data";
const INIT = new Date("2023-10-12T06:00:00Z");

async function put(s3: LocalS3, key: string, body: Uint8Array | string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
}

async function get(s3: LocalS3, key: string): Promise<Buffer | undefined> {
  try {
    const response = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return Buffer.from(await response.Body!.transformToByteArray());
  } catch (error) {
    if ((error as Error).name === "NoSuchKey") return undefined;
    throw error;
  }
}

/** Keys under `prefix`, relative to it. */
async function keysUnder(s3: LocalS3, prefix: string): Promise<string[]> {
  const listing = await s3.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (listing.Contents ?? []).map((o) => o.Key!.slice(prefix.length));
}

/** Forecast frames [70, lat, lon] of every step, computed with the pure reference. */
function referenceFrames(window: Float32Array, cascadeSteps: number[], grid: { lat: number; lon: number }): Float32Array[] {
  const frames: Float32Array[] = [];
  let current = window;
  stageSchedule(cascadeSteps).forEach((stage, step) => {
    current = standinReferenceStep(STAGES[stage], current, timeEmbedding(INIT, step), grid);
    frames.push(current.subarray(current.length / 2));
  });
  return frames;
}

describe("runtime server: full request on loopback S3", function () {
  this.timeout(300_000);
  const grid = { lat: 9, lon: 16 };
  const cascade = [20, 20, 2];
  let work: string;
  let s3: LocalS3;
  let runtime: RuntimeChild;
  let inputBytes: Buffer;
  let manifest: Manifest;
  let expected: Float32Array[];

  before(async () => {
    work = await tempDir("runtime-server");
    await writeStandinModels(join(work, "models"), grid);
    s3 = await startLocalS3({ buckets: [BUCKET] });
    inputBytes = await writeInputWithXarray(join(work, "input.nc"), { ...grid, initTime: INIT });
    await put(s3, "input/2023101206/fuxi_input.nc", inputBytes);
    expected = referenceFrames(syntheticWindow(grid.lat, grid.lon), cascade, grid);
    runtime = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: join(work, "models"), FUXI_INSTANCE_TYPE: "ml.g5.2xlarge", FUXI_INSTANCE_COUNT: "1" });
    await runtime.waitUntilReady();
  });

  after(async () => {
    if (runtime) assert.equal(await runtime.stop("SIGTERM"), 0, "graceful shutdown exits 0");
    await s3?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("answers /ping and /execution-parameters", async () => {
    const ping = await http("GET", `${runtime.url}/ping`);
    assert.equal(ping.status, 200);
    assert.equal(ping.body, "");
    const parameters = await http("GET", `${runtime.url}/execution-parameters`);
    assert.deepEqual(JSON.parse(parameters.body), { MaxConcurrentTransforms: 1, BatchStrategy: "SINGLE_RECORD", MaxPayloadInMB: 1 });
  });

  it("runs [20,20,2] and writes every step, then the _SUCCESS manifest it returns", async () => {
    const response = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("2023101206", cascade)));
    assert.equal(response.status, 200, response.body);
    manifest = JSON.parse(response.body);
    assert.equal(manifest.steps, 42);
    assert.equal(manifest.initTime, INIT.toISOString());
    assert.equal(manifest.resumedFromStep, 0);
    assert.deepEqual(manifest.providers, ["cpu"]);
    assert.equal(manifest.models.length, 6);
    for (const model of manifest.models) {
      const bytes = await readFile(join(work, "models", model.file));
      assert.equal(model.bytes, bytes.length);
      assert.match(model.sha256, /^[0-9a-f]{64}$/);
    }
    assert.deepEqual(manifest.files.map((f) => f.file), Array.from({ length: 42 }, (_, i) => stepFileName(i)));
    const stored = JSON.parse((await get(s3, "output/2023101206/_SUCCESS"))!.toString("utf8"));
    assert.deepEqual(stored, manifest);
    for (const file of manifest.files) {
      const bytes = await get(s3, `output/2023101206/${file.file}`);
      assert.equal(bytes?.length, file.bytes, `${file.file} size in the manifest`);
      assert.ok(file.runMs !== undefined && file.encodeMs !== undefined && file.uploadMs !== undefined);
    }
    const stepLogs = runtime.logs.filter((line) => line.event === RUNTIME_LOG_EVENTS.stepDone);
    // usage: the instance from the model's environment, the visible window in order, steps and bytes.
    const u = manifest.usage;
    assert.deepEqual([u.instanceType, u.instanceCount, u.stepsComputed, u.stepsResumed], ["ml.g5.2xlarge", 1, 42, 0]);
    const times = [u.containerStartedAt, u.modelsReadyAt!, u.invocationStartedAt, u.invocationEndedAt].map(Date.parse);
    assert.deepEqual([...times].sort((a, b) => a - b), times, `usage times in order: ${JSON.stringify(u)}`);
    assert.equal(u.invocationStartedAt, manifest.startedAt);
    assert.equal(u.invocationEndedAt, manifest.finishedAt);
    assert.equal(u.visibleSeconds, (times[3]! - times[0]!) / 1000);
    const stepBytes = manifest.files.reduce((a, f) => a + f.bytes, 0);
    assert.deepEqual([u.bytesWritten, u.bytesStored], [stepBytes, stepBytes]);
    assert.equal(stepLogs.length, 42);
    for (const key of ["step", "lead", "stage", "runMs", "encodeMs", "uploadMs", "rssMb"]) assert.ok(key in stepLogs[0], `step log has ${key}`);
    // One session creation per stage: short at start-up (for /ping), medium and long when reached.
    const creations = (step: number) => (stepLogs.find((l) => l.step === step) as { sessionCreations?: number }).sessionCreations;
    assert.deepEqual([creations(0), creations(19), creations(20), creations(39), creations(40), creations(41)], [1, 1, 2, 2, 3, 3]);
  });

  it("switches stage after steps 20 and 40 and matches the reference values exactly", async () => {
    assert.deepEqual(
      [manifest.files[19].stage, manifest.files[20].stage, manifest.files[39].stage, manifest.files[40].stage],
      ["short", "medium", "medium", "long"],
    );
    for (let step = 0; step < 42; step++) {
      const name = stepFileName(step);
      const decoded = await readForecastStep((await get(s3, `output/2023101206/${name}`))!, name);
      assert.equal(decoded.leadHours, (step + 1) * 6);
      assert.equal(decoded.initTime.toISOString(), INIT.toISOString());
      assert.ok(Buffer.from(decoded.data.buffer, decoded.data.byteOffset, decoded.data.byteLength).equals(Buffer.from(expected[step].buffer, expected[step].byteOffset, expected[step].byteLength)), `${name} values differ from the reference`);
    }
    // A cascade that stayed on the short model past step 20 would produce different values.
    const stuck = referenceFrames(syntheticWindow(grid.lat, grid.lon), [21], grid);
    assert.notDeepEqual(stuck[20], expected[20]);
  });

  it("writes files that ncdump and xarray.open_dataarray read with the contract's dims and coordinates", async () => {
    const file126 = join(work, "126.nc");
    await writeFile(file126, (await get(s3, "output/2023101206/126.nc"))!);
    const { stdout } = await run("ncdump", ["-h", file126]);
    for (const dim of ["time = 1", "step = 1", "level = 70", "lat = 9", "lon = 16"]) assert.match(stdout, new RegExp(`\\b${dim}\\b`), `ncdump -h shows ${dim}`);
    assert.match(stdout, /float __xarray_dataarray_variable__\(time, step, level, lat, lon\)/);

    const raw = join(work, "126.raw");
    const summary = JSON.parse(
      await python(
        `
import json, sys, numpy as np, xarray as xr
da = xr.open_dataarray(sys.argv[1])
da.values.astype("<f4").tofile(sys.argv[2])
print(json.dumps({"dims": list(da.dims), "shape": list(da.shape), "dtype": str(da.dtype),
  "time": [str(t) for t in da["time"].values], "step": da["step"].values.tolist(), "step_dtype": str(da["step"].dtype),
  "sel": list(da.sel(step=126).shape),
  "levels": [str(l) for l in da["level"].values], "lat": da["lat"].values.tolist(), "lon": da["lon"].values.tolist()}))
`,
        [file126, raw],
      ),
    );
    assert.deepEqual(summary.dims, ["time", "step", "level", "lat", "lon"]);
    assert.deepEqual(summary.shape, [1, 1, 70, 9, 16]);
    assert.equal(summary.dtype, "float32");
    assert.match(summary.time[0], /^2023-10-12T06:00:00/);
    assert.deepEqual(summary.step, [126]);
    assert.equal(summary.step_dtype, "int64");
    assert.deepEqual(summary.sel, [1, 70, 9, 16], "sel(step=126) works as on the original's files");
    assert.equal(summary.levels.length, 70);
    assert.deepEqual([summary.levels[0], summary.levels[64], summary.levels[69]], ["z50", "r1000", "tp"]);
    assert.equal(summary.lat[0], 90);
    assert.equal(summary.lat[8], -90);
    assert.equal(summary.lon[0], 0);
    assert.equal(summary.lon[15], 337.5);
    const values = await readFile(raw);
    const reference = expected[20];
    assert.ok(values.equals(Buffer.from(reference.buffer, reference.byteOffset, reference.byteLength)), "xarray reads the reference values of step 20");
  });

  it("returns the existing manifest for the same request without recomputing", async () => {
    const stepsBefore = runtime.logs.filter((line) => line.event === RUNTIME_LOG_EVENTS.stepDone).length;
    const again = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("2023101206", cascade)));
    assert.equal(again.status, 200);
    assert.deepEqual(JSON.parse(again.body), manifest);
    assert.equal(runtime.logs.filter((line) => line.event === RUNTIME_LOG_EVENTS.stepDone).length, stepsBefore, "no step recomputed");
  });

  it("writes gzip-compressed steps when asked, replacing the output of a different request", async () => {
    await put(s3, "input/gz/fuxi_input.nc", inputBytes);
    const plain = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("gz", [1])));
    assert.equal(plain.status, 200, plain.body);
    const response = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("gz", [1], { compression: "gzip" })));
    assert.equal(response.status, 200, response.body);
    const gzipManifest: Manifest = JSON.parse(response.body);
    assert.equal(gzipManifest.compression, "gzip");
    assert.equal(gzipManifest.resumedFromStep, 0, "a step file of another request is not reused");
    assert.notEqual(gzipManifest.fingerprint, JSON.parse(plain.body).fingerprint);
    assert.notEqual(gzipManifest.files[0].bytes, JSON.parse(plain.body).files[0].bytes, "the gzip file replaced the plain one");
    assert.deepEqual(JSON.parse((await get(s3, "output/gz/_SUCCESS"))!.toString("utf8")), gzipManifest);
    const path = join(work, "gz-006.nc");
    await writeFile(path, (await get(s3, "output/gz/006.nc"))!);
    const { stdout } = await run("ncdump", ["-hs", path]);
    assert.match(stdout, /_DeflateLevel = \d/);
    const decoded = await readForecastStep(await readFile(path), path);
    assert.deepEqual(decoded.data, expected[0]);
  });

  it("lists a SHA-256 per step file: the stored bytes hash to it and the file carries it as metadata", async () => {
    for (const file of manifest.files) {
      const bytes = (await get(s3, `output/2023101206/${file.file}`))!;
      assert.equal(file.sha256, createHash("sha256").update(bytes).digest("hex"), `${file.file} sha256`);
      const head = await s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `output/2023101206/${file.file}` }));
      assert.equal(head.Metadata?.["fuxi-sha256"], file.sha256);
      assert.equal(head.Metadata?.["fuxi-fingerprint"], manifest.fingerprint);
    }
    const events = runtime.logs.filter((line) => line.event === RUNTIME_LOG_EVENTS.stepDone && line.runId === "2023101206");
    assert.deepEqual(events.map((e) => e.sha256).sort(), manifest.files.map((f) => f.sha256).sort());
  });

  describe("no stale files", () => {
    it("a shorter rerun leaves exactly the files its manifest lists (plus _transform/), and logs what it removed", async () => {
      await put(s3, "input/shrink/fuxi_input.nc", inputBytes);
      assert.equal((await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("shrink", [5])))).status, 200);
      await put(s3, "output/shrink/_FAILED.json", "{}");
      await put(s3, "output/shrink/_transform/old-job.json.out", "{}");
      const response = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("shrink", [2])));
      assert.equal(response.status, 200, response.body);
      const shorter: Manifest = JSON.parse(response.body);
      assert.deepEqual((await keysUnder(s3, "output/shrink/")).sort(), ["006.nc", "012.nc", "_SUCCESS", "_transform/old-job.json.out"]);
      assert.deepEqual(shorter.files.map((f) => f.file), ["006.nc", "012.nc"]);
      const removed = runtime.logs.filter((line) => line.event === RUNTIME_LOG_EVENTS.staleObjectsRemoved && line.runId === "shrink").flatMap((line) => line.keys as string[]);
      assert.deepEqual(removed.sort(), ["output/shrink/006.nc", "output/shrink/012.nc", "output/shrink/018.nc", "output/shrink/024.nc", "output/shrink/030.nc", "output/shrink/_FAILED.json"]);
    });

    it("a rerun that fails on an input fault leaves the earlier complete run as it was", async () => {
      await put(s3, "input/keep/fuxi_input.nc", inputBytes);
      const first = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("keep", [2])));
      assert.equal(first.status, 200, first.body);
      const before = await Promise.all(["006.nc", "012.nc", "_SUCCESS"].map((name) => get(s3, `output/keep/${name}`)));
      await put(s3, "input/keep/fuxi_input.nc", await writeInputWithXarray(join(work, "keep-nan.nc"), { ...grid, initTime: INIT, fault: "nan" }));
      const rerun = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("keep", [2])));
      assert.equal(rerun.status, 400, rerun.body);
      assert.deepEqual((await keysUnder(s3, "output/keep/")).sort(), ["006.nc", "012.nc", "_SUCCESS"]);
      const after = await Promise.all(["006.nc", "012.nc", "_SUCCESS"].map((name) => get(s3, `output/keep/${name}`)));
      after.forEach((bytes, i) => assert.ok(bytes!.equals(before[i]!), "unchanged"));
    });
  });

  describe("requests stay in their lane: 400 naming the field, nothing written", () => {
    const lanes: Array<[string, Record<string, unknown>, string]> = [
      ["outputPrefix = the input folder (its manifest would be a new marker)", { outputPrefix: "s3://fuxi-data/input/2023101206/" }, "outputPrefix"],
      ["input in another bucket", { input: "s3://other-bucket/input/2023101206/fuxi_input.nc" }, "input"],
      ["an event of another run folder", { event: { ...(forecastRequest("2023101206", [1]).event as object), key: "input/2023101212/_SUCCESS" } }, "event.key"],
    ];
    for (const [name, override, field] of lanes) {
      it(name, async () => {
        const before = await keysUnder(s3, "");
        const response = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("2023101206", [1], override)));
        assert.equal(response.status, 400, response.body);
        assert.equal(JSON.parse(response.body).field, field);
        assert.deepEqual(await keysUnder(s3, ""), before);
        const event = [...runtime.logs].reverse().find((line) => line.event === RUNTIME_LOG_EVENTS.requestRejected);
        assert.equal(event?.field, field);
      });
    }
  });

  it("writes bitround steps with netCDF-C's quantize attribute, within the bound, and starts over instead of resuming from rounded files", async () => {
    await put(s3, "input/br/fuxi_input.nc", inputBytes);
    const response = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("br", [2], { compression: "bitround" })));
    assert.equal(response.status, 200, response.body);
    const brManifest: Manifest = JSON.parse(response.body);
    assert.equal(brManifest.compression, "bitround");
    const path = join(work, "br-012.nc");
    await writeFile(path, (await get(s3, "output/br/012.nc"))!);
    const { stdout } = await run("ncdump", ["-hs", path]);
    assert.match(stdout, /_QuantizeBitRoundNumberOfSignificantBits = 8 ;/);
    const decoded = await readForecastStep(await readFile(path), path);
    assert.equal(decoded.compression, "bitround");
    const bits = decoded.bitroundBits!;
    for (let i = 0; i < expected[1].length; i++) {
      const x = expected[1][i];
      const level = Math.floor(i / (grid.lat * grid.lon));
      assert.ok(Math.abs(decoded.data[i] - x) <= 2 ** -(bits[level] + 1) * Math.abs(x), `value ${i}: ${x} → ${decoded.data[i]}`);
    }
    // A second invocation after the manifest is gone recomputes from the input (same bytes), not from 006.nc.
    await s3.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "output/br/_SUCCESS" }));
    const again = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("br", [2], { compression: "bitround" })));
    assert.equal(again.status, 200, again.body);
    assert.equal(JSON.parse(again.body).resumedFromStep, 0);
    assert.ok((await get(s3, "output/br/012.nc"))!.equals(await readFile(path)), "the recomputed bitround file differs");
  });

  describe("bad inputs: 400 naming the file or field, no _SUCCESS, still healthy", () => {
    const cases: Array<{ name: string; runId: string; prepare(): Promise<void>; body?: string; expect: RegExp }> = [
      {
        name: "wrong grid shape",
        runId: "bad-shape",
        prepare: async () => put(s3, "input/bad-shape/fuxi_input.nc", await writeInputWithXarray(join(work, "bad-shape.nc"), { lat: 10, lon: 16, initTime: INIT })),
        expect: /lat/i,
      },
      {
        name: "reversed latitude",
        runId: "bad-lat",
        prepare: async () => put(s3, "input/bad-lat/fuxi_input.nc", await writeInputWithXarray(join(work, "bad-lat.nc"), { ...grid, initTime: INIT, fault: "reverse-latitude" })),
        expect: /lat/i,
      },
      {
        name: "NaN in the data",
        runId: "bad-nan",
        prepare: async () => put(s3, "input/bad-nan/fuxi_input.nc", await writeInputWithXarray(join(work, "bad-nan.nc"), { ...grid, initTime: INIT, fault: "nan" })),
        expect: /NaN/,
      },
      {
        name: "missing data variable",
        runId: "bad-var",
        prepare: async () => put(s3, "input/bad-var/fuxi_input.nc", await writeInputWithXarray(join(work, "bad-var.nc"), { ...grid, initTime: INIT, fault: "missing-variable" })),
        expect: /variable/i,
      },
      {
        name: "wrong channel name",
        runId: "bad-chan",
        prepare: async () => put(s3, "input/bad-chan/fuxi_input.nc", await writeInputWithXarray(join(work, "bad-chan.nc"), { ...grid, initTime: INIT, fault: "wrong-channel" })),
        expect: /q200/,
      },
      {
        name: "truncated file",
        runId: "bad-trunc",
        prepare: async () => put(s3, "input/bad-trunc/fuxi_input.nc", inputBytes.subarray(0, Math.floor(inputBytes.length / 2))),
        expect: /./,
      },
      {
        name: "not NetCDF",
        runId: "bad-text",
        prepare: async () => put(s3, "input/bad-text/fuxi_input.nc", "time,level,lat,lon,value\n"),
        expect: /not a NetCDF file/,
      },
      { name: "missing input object", runId: "bad-missing", prepare: async () => undefined, expect: /does not exist/ },
    ];
    for (const testCase of cases) {
      it(`${testCase.name} → 400`, async () => {
        await testCase.prepare();
        const response = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest(testCase.runId, [2])));
        assert.equal(response.status, 400, response.body);
        const body = JSON.parse(response.body);
        assert.equal(body.file, `s3://${BUCKET}/input/${testCase.runId}/fuxi_input.nc`, `names the file: ${response.body}`);
        assert.match(body.fault, testCase.expect);
        assert.equal(await get(s3, `output/${testCase.runId}/_SUCCESS`), undefined);
        assert.equal((await http("GET", `${runtime.url}/ping`)).status, 200);
      });
    }

    it("bad request JSON → 400", async () => {
      const response = await http("POST", `${runtime.url}/invocations`, '{"version": 1, ');
      assert.equal(response.status, 400);
      assert.match(JSON.parse(response.body).error, /not valid JSON/);
    });

    it("bad request field → 400 naming the field", async () => {
      const response = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("bad-steps", [25, 1])));
      assert.equal(response.status, 400);
      assert.equal(JSON.parse(response.body).field, "cascadeSteps[0]");
      assert.equal(await get(s3, "output/bad-steps/_SUCCESS"), undefined);
    });

    it("still runs a good request afterwards", async () => {
      await put(s3, "input/after/fuxi_input.nc", inputBytes);
      const response = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("after", [1])));
      assert.equal(response.status, 200, response.body);
    });
  });
});

describe("runtime server: S3 unreachable", function () {
  this.timeout(120_000);
  let work: string;
  let runtime: RuntimeChild;

  before(async () => {
    work = await tempDir("runtime-s3-down");
    await writeStandinModels(join(work, "models"), { lat: 9, lon: 16 });
    const deadPort = await freePort(); // nothing listens there
    runtime = await startRuntimeChild({
      FUXI_MODEL_DIR: join(work, "models"),
      AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${deadPort}`,
      AWS_REGION: "cn-northwest-1",
      AWS_ACCESS_KEY_ID: "x",
      AWS_SECRET_ACCESS_KEY: "x",
      S3_FORCE_PATH_STYLE: "true",
      AWS_MAX_ATTEMPTS: "3",
    });
    await runtime.waitUntilReady();
  });

  after(async () => {
    await runtime?.stop("SIGTERM");
    await rm(work, { recursive: true, force: true });
  });

  it("answers 503 naming the operation, bucket and key, after the SDK's retries, with what to check", async () => {
    const response = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("down", [1])));
    assert.equal(response.status, 503, response.body);
    const body = JSON.parse(response.body);
    assert.equal(body.operation, "HeadObject");
    assert.equal(body.bucket, BUCKET);
    assert.equal(body.key, "input/down/fuxi_input.nc");
    assert.equal(body.transient, true);
    assert.match(body.error, /^S3 HeadObject s3:\/\/fuxi-data\/input\/down\/fuxi_input\.nc failed after 3 attempts \(.*ECONNREFUSED/);
    assert.match(body.hint, /reachable/);
    // Logged just before the answer is sent, but stdout and the socket are separate pipes: wait for it.
    const event = await runtime.waitForLog((line) => line.event === RUNTIME_LOG_EVENTS.runFailed, 10_000);
    assert.equal(event?.operation, "HeadObject");
    assert.equal((await http("GET", `${runtime.url}/ping`)).status, 200);
  });
});

/** uid/gid of `nobody` when this process may switch to it and that user can read the repository; else undefined. */
function unprivilegedUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const user = { uid: 65534, gid: 65534 };
  const probe = spawnSync(process.execPath, ["-e", `require("fs").accessSync(${JSON.stringify(join(REPO_ROOT, "runtime", "src", "main.ts"))})`], user);
  return probe.status === 0 ? user : undefined;
}

describe("runtime server: a later stage that cannot load", function () {
  this.timeout(120_000);
  const grid = { lat: 9, lon: 16 };
  let work: string;
  let s3: LocalS3;
  let runtime: RuntimeChild;

  before(async () => {
    work = await tempDir("runtime-late-stage");
    await writeStandinModels(join(work, "models"), grid);
    // long.onnx has FuXi's signature and intact weights (the start-up graph check passes, and a
    // truncated weights file would already fail it), but an operator ONNX Runtime does not know.
    const long = join(work, "models", "long.onnx");
    await writeFile(long, editOnnxModel(await readFile(long), (model) => (model.graph.node[1].op_type = "NoSuchOperator")));
    s3 = await startLocalS3({ buckets: [BUCKET] });
    await put(s3, "input/late/fuxi_input.nc", await writeInputWithXarray(join(work, "input.nc"), { ...grid, initTime: INIT }));
    runtime = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: join(work, "models") });
    await runtime.waitUntilReady();
  });

  after(async () => {
    if (runtime) await runtime.stop("SIGTERM");
    await s3?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("is healthy with only the first stage loaded, then fails the run naming the file when it reaches the broken stage", async () => {
    assert.equal((await http("GET", `${runtime.url}/ping`)).status, 200);
    const response = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("late", [1, 1, 1])));
    assert.equal(response.status, 500, response.body);
    assert.match(response.body, /cannot load model .*long\.onnx \(with its weights file long\)/);
    assert.equal(await get(s3, "output/late/_SUCCESS"), undefined, "no manifest for a failed run");
    assert.ok(await get(s3, "output/late/012.nc"), "the steps before the broken stage are kept for a retry");
  });
});

describe("runtime server: scratch directory, unprivileged user", function () {
  this.timeout(120_000);
  const grid = { lat: 9, lon: 16 };
  const user = unprivilegedUser();
  let work: string;
  let scratch: string;
  let s3: LocalS3;
  let runtime: RuntimeChild;
  let response: { status: number; body: string };

  before(async () => {
    work = await tempDir("runtime-scratch");
    await writeStandinModels(join(work, "models"), grid);
    scratch = join(work, "scratch");
    await mkdir(scratch);
    if (user) {
      // As in the image: a non-root user that can read the models and write only its scratch directory.
      await chmod(work, 0o755);
      await chown(scratch, user.uid, user.gid);
    }
    s3 = await startLocalS3({ buckets: [BUCKET] });
    await put(s3, "input/scratch/fuxi_input.nc", await writeInputWithXarray(join(work, "input.nc"), { ...grid, initTime: INIT }));
    runtime = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: join(work, "models"), FUXI_SCRATCH_DIR: scratch }, ["serve"], TSX_ENTRY, user);
    await runtime.waitUntilReady();
    response = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("scratch", [3])));
  });

  after(async () => {
    if (runtime) await runtime.stop("SIGTERM");
    await s3?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("writes the input and step files under FUXI_SCRATCH_DIR and leaves it empty", async () => {
    assert.equal(response.status, 200, response.body);
    const manifest: Manifest = JSON.parse(response.body);
    assert.deepEqual(manifest.files.map((f) => f.file), ["006.nc", "012.nc", "018.nc"]);
    for (const file of manifest.files) assert.equal((await get(s3, `output/scratch/${file.file}`))?.length, file.bytes);
    assert.deepEqual(await readdir(scratch), []);
  });

  it("runs as an unprivileged user, as the image does (h5wasm writes real files, so no path outside the scratch directory)", async function () {
    if (!user) this.skip(); // needs root to switch users, and a checkout that user can read
    const status = await readFile(`/proc/${runtime.child.pid}/status`, "utf8");
    assert.match(status, new RegExp(`^Uid:\\s+${user!.uid}\\s`, "m"));
    assert.equal(response.status, 200, response.body);
  });
});
