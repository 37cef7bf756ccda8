import { processStartedAt, runUsage } from "../runtime/src/usage";
import assert from "node:assert/strict";
import { readFile, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
// onnxruntime-node is a runtime dependency only (runtime/node_modules).
import * as ort from "../runtime/node_modules/onnxruntime-node";
import { timeEmbedding } from "../runtime/src/time-embedding";
import { leadHours, parseForecastRequest, RequestError, stageSchedule, stepFileName, transformJobName } from "../runtime/src/contract";
import { ConfigError, readConfig } from "../runtime/src/config";
import { bitsPerChannel, DEFAULT_BITROUND_BITS } from "../runtime/src/bitround-bits";
import { requestFingerprint } from "../runtime/src/forecast";
import { standinReferenceStep, stageConstants, STAGES, writeStandinModels } from "../tools/standin-model";
import { tempDir } from "./support/runtime-harness";

function assertClose(actual: ArrayLike<number>, expected: number[], tolerance: number, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance, `${label}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

/** [sin d, sin h, cos d, cos h] for a day of year and hour written out by hand. */
function group(dayOfYear: number, hour: number): number[] {
  const d = dayOfYear / 366;
  const h = hour / 24;
  return [Math.sin(d), Math.sin(h), Math.cos(d), Math.cos(h)];
}

describe("runtime: time embedding", () => {
  it("reproduces the contract's test vector (t0 2023-10-12 06:00Z, step 0)", () => {
    const expected = [0.702346, 0, 0.711835, 1, 0.702346, 0.247404, 0.711835, 0.968912, 0.702346, 0.479426, 0.711835, 0.877583];
    assertClose(timeEmbedding(new Date("2023-10-12T06:00:00Z"), 0), expected, 1e-6, "contract");
  });

  it("moves by 6 h per global step (step 5: Oct 13 06/12/18 h = day 286)", () => {
    const expected = [...group(286, 6), ...group(286, 12), ...group(286, 18)];
    assertClose(timeEmbedding(new Date("2023-10-12T06:00:00Z"), 5), expected, 1e-6, "step 5");
  });

  it("crosses the year boundary: Dec 31 18h is day 365 of 2023, Jan 1 is day 1", () => {
    const expected = [...group(365, 18), ...group(1, 0), ...group(1, 6)];
    assertClose(timeEmbedding(new Date("2024-01-01T00:00:00Z"), 0), expected, 1e-6, "new year");
  });

  it("uses day 366 on Dec 31 of a leap year (d = 1)", () => {
    const expected = [...group(366, 12), ...group(366, 18), ...group(1, 0)];
    assertClose(timeEmbedding(new Date("2024-12-31T12:00:00Z"), 1), expected, 1e-6, "leap year");
  });

  it("is not reset between stages: step 20 differs from step 0 and equals a fresh t0+120 h at step 0", () => {
    const t0 = new Date("2023-10-12T06:00:00Z");
    const shifted = new Date(t0.getTime() + 20 * 6 * 3600_000);
    assert.deepEqual(timeEmbedding(t0, 20), timeEmbedding(shifted, 0));
    assert.notDeepEqual(timeEmbedding(t0, 20), timeEmbedding(t0, 0));
  });
});

describe("runtime: cascade schedule", () => {
  it("switches stage at cumulative step counts 20 and 40", () => {
    const schedule = stageSchedule([20, 20, 20]);
    assert.equal(schedule.length, 60);
    assert.deepEqual([schedule[0], schedule[19], schedule[20], schedule[39], schedule[40], schedule[59]], [0, 0, 1, 1, 2, 2]);
  });

  it("handles the replaced deployment's [20,20,34], single-stage runs and skipped stages", () => {
    assert.equal(stageSchedule([20, 20, 34]).length, 74);
    assert.equal(stageSchedule([20, 20, 34])[73], 2);
    assert.deepEqual(stageSchedule([3]), [0, 0, 0]);
    assert.deepEqual(stageSchedule([0, 0, 2]), [2, 2]);
    assert.deepEqual(stageSchedule([1, 0, 1]), [0, 2]);
  });

  it("names step files by lead hours", () => {
    assert.deepEqual([0, 1, 19, 59, 99].map(stepFileName), ["006.nc", "012.nc", "120.nc", "360.nc", "600.nc"]);
    assert.equal(leadHours(39), 240);
  });
});

const LANES = { bucket: "fuxi-data", inputPrefix: "input/", outputPrefix: "output/" };
const LANES_ENV = { FUXI_DATA_BUCKET: LANES.bucket, FUXI_INPUT_PREFIX: LANES.inputPrefix, FUXI_OUTPUT_PREFIX: LANES.outputPrefix };

/** docs/contract.md's example request: the trigger would write exactly this for its event. */
const VALID_REQUEST = {
  version: 1,
  jobName: "fuxi-dev-2023101206-8f7a07b8",
  runId: "2023101206",
  input: "s3://fuxi-data/input/2023101206/fuxi_input.nc",
  outputPrefix: "s3://fuxi-data/output/2023101206/",
  cascadeSteps: [20, 20, 20],
  outputFormat: "netcdf4",
  compression: "none",
  requestedAt: "2026-11-22T06:00:00.000Z",
  event: {
    bucket: "fuxi-data",
    key: "input/2023101206/_SUCCESS",
    versionId: "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
    sequencer: "0055AED6DCD90281E5",
    eventName: "ObjectCreated:Put",
    eventTime: "2026-11-22T05:59:58.000Z",
  },
};

const parse = (request: unknown, lanes = LANES) => parseForecastRequest(JSON.stringify(request), lanes);
const rejects = (request: unknown, field: string, message: RegExp, lanes = LANES) =>
  assert.throws(
    () => parse(request, lanes),
    (error: unknown) => error instanceof RequestError && error.httpStatus === 400 && error.field === field && message.test(error.message),
    `expected a RequestError for ${field} matching ${message}`,
  );

describe("runtime: request validation", () => {
  it("accepts the contract's example and one without versionId", () => {
    assert.deepEqual(parse(VALID_REQUEST), VALID_REQUEST);
    assert.deepEqual(parse({ ...VALID_REQUEST, cascadeSteps: [20, 20, 34] }).cascadeSteps, [20, 20, 34]);
    const event = { bucket: "fuxi-data", key: "input/2023101206/_SUCCESS", sequencer: "0055AED6DCD90281E5", eventName: "ObjectCreated:Put", eventTime: "2026-11-22T05:59:58.000Z" };
    const jobName = transformJobName("fuxi-dev", "2023101206", event);
    assert.equal(parse({ ...VALID_REQUEST, jobName, event }).event.versionId, undefined);
  });

  const faults: Array<[string, unknown, string, RegExp]> = [
    ["version", 2, "version", /must be 1/],
    ["jobName", "bad_name!", "jobName", /must match/],
    ["runId", "a/b", "runId", /contains "\/"/],
    ["runId", "..", "runId", /path step/],
    ["input", "https://x/y.nc", "input", /s3:\/\/bucket\/key/],
    ["input", "s3://fuxi-data/input/other/fuxi_input.nc", "input", /2023101206\/<name>\.nc/],
    ["input", "s3://fuxi-data/input/2023101206/sub/fuxi_input.nc", "input", /2023101206\/<name>\.nc/],
    ["input", "s3://fuxi-data/input/2023101206/_SUCCESS", "input", /<name>\.nc/],
    ["outputPrefix", "s3://fuxi-data/output/", "outputPrefix", /output\/2023101206\//],
    ["outputPrefix", "s3://fuxi-data/output/x/2023101206/", "outputPrefix", /must be s3:\/\/fuxi-data\/output\/2023101206\//],
    ["cascadeSteps", [], "cascadeSteps", /expected 1 to 3/],
    ["cascadeSteps", [21, 20], "cascadeSteps[0]", /only the last stage/],
    ["cascadeSteps", [20, 1.5], "cascadeSteps[1]", /non-negative whole number/],
    ["cascadeSteps", [0, 0, 0], "cascadeSteps", /1 to 100/],
    ["cascadeSteps", [20, 20, 61], "cascadeSteps", /1 to 100/],
    ["outputFormat", "grib", "outputFormat", /netcdf4/],
    ["compression", "zstd", "compression", /"none", "gzip", "bitround"/],
    ["requestedAt", "yesterday", "requestedAt", /ISO 8601/],
    ["event", "x", "event", /must be an object/],
    ["extra", 1, "extra", /not a field/],
  ];
  for (const [name, value, field, message] of faults) {
    it(`rejects ${name} = ${JSON.stringify(value)} naming ${field}`, () => rejects({ ...VALID_REQUEST, [name]: value }, field, message));
  }

  describe("lanes: the stack's bucket and prefixes (FUXI_DATA_BUCKET, FUXI_INPUT_PREFIX, FUXI_OUTPUT_PREFIX)", () => {
    it("rejects an input in another bucket", () => rejects({ ...VALID_REQUEST, input: "s3://other-bucket/input/2023101206/fuxi_input.nc" }, "input", /this stack's bucket and input prefix/));
    it("rejects an input outside the input prefix", () => rejects({ ...VALID_REQUEST, input: "s3://fuxi-data/output/2023101206/fuxi_input.nc" }, "input", /s3:\/\/fuxi-data\/input\/2023101206\/<name>\.nc/));
    it("rejects an outputPrefix equal to the input folder (its manifest would be a new marker)", () =>
      rejects({ ...VALID_REQUEST, outputPrefix: "s3://fuxi-data/input/2023101206/" }, "outputPrefix", /s3:\/\/fuxi-data\/output\/2023101206\//));
    it("rejects an outputPrefix in another bucket", () => rejects({ ...VALID_REQUEST, outputPrefix: "s3://other-bucket/output/2023101206/" }, "outputPrefix", /this stack's bucket/));
    it("rejects an outputPrefix of another run", () => rejects({ ...VALID_REQUEST, outputPrefix: "s3://fuxi-data/output/2023101212/" }, "outputPrefix", /output\/2023101206\//));
    it("rejects an event for another bucket", () => rejects({ ...VALID_REQUEST, event: { ...VALID_REQUEST.event, bucket: "other-bucket" } }, "event.bucket", /this stack's bucket "fuxi-data"/));
    it("rejects an event that is not the marker of the run folder", () => {
      rejects({ ...VALID_REQUEST, event: { ...VALID_REQUEST.event, key: "input/2023101212/_SUCCESS" } }, "event.key", /"input\/2023101206\/_SUCCESS"/);
      rejects({ ...VALID_REQUEST, event: { ...VALID_REQUEST.event, key: "input/2023101206/fuxi_input.nc" } }, "event.key", /_SUCCESS marker/);
    });
    it("rejects an event that did not create an object", () => rejects({ ...VALID_REQUEST, event: { ...VALID_REQUEST.event, eventName: "ObjectRemoved:Delete" } }, "event.eventName", /ObjectCreated/));
    it("rejects a job name not derived from the event (another upload's hash)", () =>
      rejects({ ...VALID_REQUEST, jobName: "fuxi-dev-2023101206-1a2b3c4d" }, "jobName", /must end in "-8f7a07b8"/));
    it("follows other prefixes, including empty ones", () => {
      const lanes = { bucket: "b-1.x", inputPrefix: "in/coming/", outputPrefix: "" };
      const event = { ...VALID_REQUEST.event, bucket: "b-1.x", key: "in/coming/2023101206/_SUCCESS" };
      const request = { ...VALID_REQUEST, jobName: transformJobName("fuxi-dev", "2023101206", event), input: "s3://b-1.x/in/coming/2023101206/a.NC", outputPrefix: "s3://b-1.x/2023101206/", event };
      assert.deepEqual(parse(request, lanes), request);
      rejects(VALID_REQUEST, "input", /s3:\/\/b-1\.x\/in\/coming\/2023101206\/<name>\.nc/, lanes);
    });
  });

  it("rejects a missing field, a missing event field and non-JSON", () => {
    const { jobName: _omit, ...noJob } = VALID_REQUEST;
    assert.throws(() => parse(noJob), /request field jobName: is missing/);
    assert.throws(() => parse({ ...VALID_REQUEST, event: { ...VALID_REQUEST.event, key: undefined } }), /event\.key: is missing/);
    const anonymous = { ...VALID_REQUEST.event, versionId: undefined, sequencer: undefined };
    assert.throws(() => parse({ ...VALID_REQUEST, event: anonymous }), /event: needs a versionId or a sequencer/);
    assert.throws(() => parseForecastRequest("{not json", LANES), /not valid JSON/);
    assert.throws(() => parseForecastRequest("[1]", LANES), /must be a JSON object/);
  });

  it("fingerprints what determines the output, not the job name", () => {
    const models = [{ file: "short.onnx", bytes: 1, sha256: "a" }];
    const base = parse(VALID_REQUEST);
    const fp = requestFingerprint(base, "etag", models);
    assert.equal(requestFingerprint({ ...base, jobName: "other" }, "etag", models), fp);
    assert.notEqual(requestFingerprint({ ...base, compression: "gzip" }, "etag", models), fp);
    assert.notEqual(requestFingerprint(base, "etag2", models), fp);
    assert.notEqual(requestFingerprint(base, "etag", [{ ...models[0], sha256: "b" }]), fp);
  });
});

describe("runtime: configuration", () => {
  it("has the contract's defaults", () => {
    const config = readConfig(LANES_ENV);
    assert.deepEqual(config, {
      lanes: LANES,
      modelDir: "/opt/ml/model",
      modelS3Uri: undefined,
      modelCacheDir: "/tmp/fuxi-model",
      scratchDir: join(tmpdir(), "fuxi-scratch"),
      providers: ["cuda"],
      keepAllStages: false,
      prefetchNextStage: false,
      intraOpThreads: undefined,
      stepsInFlight: 2,
      encodeThreads: Math.max(2, availableParallelism() - 1),
      bitroundBits: bitsPerChannel(DEFAULT_BITROUND_BITS),
      logLevel: "info",
      port: 8080,
      instanceType: null,
      instanceCount: null,
    });
    assert.deepEqual(readConfig({ ...LANES_ENV, FUXI_INSTANCE_TYPE: "ml.g5.2xlarge", FUXI_INSTANCE_COUNT: "2" }), { ...config, instanceType: "ml.g5.2xlarge", instanceCount: 2 });
  });

  it("needs the stack's lanes: bucket name, prefixes that end in / and do not overlap", () => {
    for (const name of Object.keys(LANES_ENV)) {
      const env: Record<string, string> = { ...LANES_ENV };
      delete env[name];
      assert.throws(() => readConfig(env), (e: unknown) => e instanceof ConfigError && e.variable === name && /is not set/.test(e.message));
    }
    assert.throws(() => readConfig({ ...LANES_ENV, FUXI_DATA_BUCKET: "Bad_Bucket" }), /FUXI_DATA_BUCKET: must be an S3 bucket name/);
    assert.throws(() => readConfig({ ...LANES_ENV, FUXI_INPUT_PREFIX: "input" }), /FUXI_INPUT_PREFIX: must be empty or end in "\/"/);
    assert.throws(() => readConfig({ ...LANES_ENV, FUXI_OUTPUT_PREFIX: "input/out/" }), /FUXI_OUTPUT_PREFIX: "input\/out\/" overlaps FUXI_INPUT_PREFIX/);
    assert.throws(() => readConfig({ ...LANES_ENV, FUXI_OUTPUT_PREFIX: "" }), /overlaps/);
  });

  it("reads FUXI_ENCODE_THREADS and FUXI_BITROUND_BITS, naming bad values", () => {
    assert.equal(readConfig({ ...LANES_ENV, FUXI_ENCODE_THREADS: "7" }).encodeThreads, 7);
    const bits = readConfig({ ...LANES_ENV, FUXI_BITROUND_BITS: "t=9, TP=5" }).bitroundBits;
    assert.equal(bits.length, 70);
    assert.equal(bits[13], 9); // t50
    assert.equal(bits[25], 9); // t1000
    assert.equal(bits[69], 5); // tp
    assert.equal(bits[0], DEFAULT_BITROUND_BITS.z);
    assert.throws(() => readConfig({ ...LANES_ENV, FUXI_BITROUND_BITS: "q=5" }), /FUXI_BITROUND_BITS: unknown variable "q"/);
    assert.throws(() => readConfig({ ...LANES_ENV, FUXI_BITROUND_BITS: "t=0" }), /FUXI_BITROUND_BITS: t=0: float32 keeps 1 … 23 mantissa bits/);
    assert.throws(() => readConfig({ ...LANES_ENV, FUXI_BITROUND_BITS: "t" }), /FUXI_BITROUND_BITS: entry "t" is not <variable>=<bits>/);
    assert.throws(() => readConfig({ ...LANES_ENV, FUXI_ENCODE_THREADS: "0" }), /FUXI_ENCODE_THREADS: must be an integer from 1 to 64/);
  });

  it("refuses CPU unless FUXI_ALLOW_CPU=true", () => {
    assert.throws(() => readConfig({ ...LANES_ENV, FUXI_PROVIDERS: "cuda,cpu" }), (e: unknown) => e instanceof ConfigError && e.variable === "FUXI_PROVIDERS" && /FUXI_ALLOW_CPU/.test(e.message));
    assert.deepEqual(readConfig({ ...LANES_ENV, FUXI_PROVIDERS: "cuda,cpu", FUXI_ALLOW_CPU: "TRUE" }).providers, ["cuda", "cpu"]);
  });

  it("names the variable for bad values", () => {
    assert.throws(() => readConfig({ ...LANES_ENV, FUXI_PROVIDERS: "tensorrt" }), /FUXI_PROVIDERS: unknown execution provider "tensorrt"/);
    assert.throws(() => readConfig({ ...LANES_ENV, FUXI_STEPS_IN_FLIGHT: "0" }), /FUXI_STEPS_IN_FLIGHT: must be an integer from 1 to 8/);
    assert.throws(() => readConfig({ ...LANES_ENV, FUXI_KEEP_ALL_STAGES: "yes" }), /FUXI_KEEP_ALL_STAGES: must be "true" or "false"/);
    assert.throws(() => readConfig({ ...LANES_ENV, FUXI_MODEL_S3_URI: "s3://bucket/no-slash" }), /FUXI_MODEL_S3_URI: must look like/);
    assert.throws(() => readConfig({ ...LANES_ENV, SAGEMAKER_BIND_TO_PORT: "http" }), /SAGEMAKER_BIND_TO_PORT/);
    assert.throws(() => readConfig({ ...LANES_ENV, FUXI_INSTANCE_TYPE: "g5.2xlarge" }), /FUXI_INSTANCE_TYPE: must look like ml.<family>.<size>/);
    assert.throws(() => readConfig({ ...LANES_ENV, FUXI_INSTANCE_COUNT: "0" }), /FUXI_INSTANCE_COUNT: must be an integer from 1 to 100/);
  });
});
describe("runtime: the manifest's usage", () => {
  const started = new Date("2026-12-01T06:00:00.000Z");
  const at = (s: number) => new Date(started.getTime() + s * 1000);
  it("records the visible window, steps and bytes of this invocation", () => {
    const u = runUsage({
      instance: { instanceType: "ml.g4dn.xlarge", instanceCount: 1 },
      containerStartedAt: started,
      modelsReadyAt: at(40),
      invocationStartedAt: at(41),
      invocationEndedAt: at(641.5),
      files: [{ bytes: 100, resumed: true }, { bytes: 200, resumed: true }, { bytes: 300, resumed: false }],
    });
    assert.deepEqual(u, {
      instanceType: "ml.g4dn.xlarge",
      instanceCount: 1,
      containerStartedAt: "2026-12-01T06:00:00.000Z",
      modelsReadyAt: "2026-12-01T06:00:40.000Z",
      invocationStartedAt: "2026-12-01T06:00:41.000Z",
      invocationEndedAt: "2026-12-01T06:10:41.500Z",
      visibleSeconds: 641.5,
      stepsComputed: 1,
      stepsResumed: 2,
      bytesWritten: 300,
      bytesStored: 600,
    });
  });
  it("takes the container's start from the process's uptime", () => {
    assert.equal(processStartedAt(Date.parse("2026-12-01T06:00:10Z"), 10).toISOString(), "2026-12-01T06:00:00.000Z");
    assert.ok(processStartedAt().getTime() <= Date.now());  });
});

describe("runtime: stand-in ONNX models", () => {
  const grid = { lat: 6, lon: 10 };
  let dir: string;
  before(async () => {
    dir = await tempDir("standin");
    await writeStandinModels(dir, grid);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("run in real ONNX Runtime from a path with external weights and match the reference exactly", async () => {
    const window = new Float32Array(2 * 70 * grid.lat * grid.lon).map((_, i) => Math.cos(i * 0.37) * 50 + 200);
    const temb = timeEmbedding(new Date("2023-10-12T06:00:00Z"), 3);
    const outputNames = new Set<string>();
    for (const stage of STAGES) {
      const session = await ort.InferenceSession.create(join(dir, `${stage}.onnx`), { executionProviders: ["cpu"] });
      assert.deepEqual(session.inputNames, ["input", "temb"]);
      outputNames.add(session.outputNames[0]);
      const result = await session.run({ input: new ort.Tensor("float32", window, [1, 2, 70, grid.lat, grid.lon]), temb: new ort.Tensor("float32", temb, [1, 12]) });
      const out = result[session.outputNames[0]];
      assert.deepEqual(out.dims, [1, 2, 70, grid.lat, grid.lon]);
      const expected = standinReferenceStep(stage, window, temb, grid);
      assert.deepEqual(out.data, expected, `${stage} output differs from the reference`);
      // The window roll: out[:, 0] is in[:, 1].
      const frame = 70 * grid.lat * grid.lon;
      assert.deepEqual((out.data as Float32Array).subarray(0, frame), window.subarray(frame));
      // Hand-check one value: out[0,1,c=5,y=2,x=3] = in[0,1,5,2,3]*scale + offset[5] + sum(temb)*w.
      const { scale, offsets, tembWeight } = stageConstants(stage);
      const index = frame + 5 * grid.lat * grid.lon + 2 * grid.lon + 3;
      const tembSum = temb.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs((out.data as Float32Array)[index] - (window[index] * scale + offsets[5] + tembSum * tembWeight)) < 1e-3);
      await session.release();
    }
    assert.equal(outputNames.size, 3, "each stage has its own output name");
  });

  it("with benchmark busy work (opsPerStep) still compute the reference: the Sin chain only costs time", async () => {
    const busy = await tempDir("standin-busy");
    try {
      await writeStandinModels(busy, { ...grid, opsPerStep: 2 });
      const onnx = (await readFile(join(busy, "short.onnx"))).toString("latin1");
      assert.equal(onnx.split("Sin_busy_").length - 1, 2, "two busy Sin nodes");
      const window = new Float32Array(2 * 70 * grid.lat * grid.lon).map((_, i) => Math.sin(i * 0.11) * 30 + 250);
      const temb = timeEmbedding(new Date("2023-10-12T06:00:00Z"), 7);
      const session = await ort.InferenceSession.create(join(busy, "short.onnx"), { executionProviders: ["cpu"] });
      const result = await session.run({ input: new ort.Tensor("float32", window, [1, 2, 70, grid.lat, grid.lon]), temb: new ort.Tensor("float32", temb, [1, 12]) });
      assert.deepEqual(result[session.outputNames[0]].data, standinReferenceStep("short", window, temb, grid));
      await session.release();
    } finally {
      await rm(busy, { recursive: true, force: true });
    }
  });

  it("stage constants differ, so a wrong stage is visible in the output", () => {
    const window = new Float32Array(2 * 70 * grid.lat * grid.lon).fill(10);
    const temb = new Float32Array(12);
    const outputs = STAGES.map((stage) => standinReferenceStep(stage, window, temb, grid));
    assert.notDeepEqual(outputs[0], outputs[1]);
    assert.notDeepEqual(outputs[1], outputs[2]);
  });

  it("fail to load without the weights file next to the .onnx", async () => {
    const broken = await tempDir("standin-broken");
    try {
      await writeStandinModels(broken, grid);
      await rm(join(broken, "medium"));
      await assert.rejects(ort.InferenceSession.create(join(broken, "medium.onnx")), /medium/);
    } finally {
      await rm(broken, { recursive: true, force: true });
    }
  });
});
