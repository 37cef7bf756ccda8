// FUXI_PREFETCH_NEXT_STAGE: the next stage's session is created in a second inference worker while
// the current stage runs, and takes the window over at the switch. The results must not change, each
// stage is still created once per run, and a next stage that cannot load fails the run at the switch,
// naming its file, without disturbing the steps before it.
import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { editOnnxModel, STAGES, standinReferenceStep, writeStandinModels } from "../tools/standin-model";
import { InferenceEngine } from "../runtime/src/inference";
import type { StepResult } from "../runtime/src/inference-worker";
import { readForecastStep } from "../runtime/src/netcdf";
import { RUNTIME_LOG_EVENTS, stageSchedule, stepFileName, type Manifest } from "../runtime/src/contract";
import { timeEmbedding } from "../runtime/src/time-embedding";
import { startLocalS3 } from "../tools/local-s3";
import { forecastRequest, http, startRuntimeChild, syntheticWindow, tempDir, writeInputWithXarray } from "./support/runtime-harness";

const grid = { lat: 9, lon: 16 };
const SCHEDULE = [0, 0, 0, 1, 1, 2, 2];
const INIT = new Date("2023-10-12T06:00:00Z");
const bits = (values: Float32Array) => Buffer.from(values.buffer, values.byteOffset, values.byteLength);

/** Runs SCHEDULE on a fresh engine; with `prefetch`, names the next stage at each stage's first step, as runForecast does. */
async function runSchedule(dir: string, prefetch: boolean): Promise<StepResult[]> {
  const engine = new InferenceEngine();
  try {
    await engine.init({ modelDir: dir, providers: ["cpu"], intraOpThreads: 1, keepAllStages: false });
    await engine.setWindow(syntheticWindow(grid.lat, grid.lon));
    const results: StepResult[] = [];
    for (let step = 0; step < SCHEDULE.length; step++) {
      const next = prefetch && (step === 0 || SCHEDULE[step - 1] !== SCHEDULE[step]) ? SCHEDULE.slice(step).find((stage) => stage !== SCHEDULE[step]) : undefined;
      results.push(await engine.step(SCHEDULE[step]!, timeEmbedding(INIT, step), next));
    }
    await engine.releaseWindow();
    return results;
  } finally {
    await engine.close();
  }
}

describe("runtime: prefetching the next stage (FUXI_PREFETCH_NEXT_STAGE)", function () {
  this.timeout(180_000);
  let work: string;

  before(async () => {
    work = await tempDir("runtime-prefetch");
    await writeStandinModels(join(work, "good"), grid);
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it("gives the same frames bit for bit, with one session creation per stage", async () => {
    const plain = await runSchedule(join(work, "good"), false);
    const prefetched = await runSchedule(join(work, "good"), true);
    prefetched.forEach((result, step) => assert.ok(bits(result.frame).equals(bits(plain[step]!.frame)), `frame of step ${step}`));
    assert.deepEqual(prefetched.map((r) => r.sessionCreations), [1, 1, 1, 2, 2, 3, 3]);
    assert.deepEqual(plain.map((r) => r.sessionCreations), [1, 1, 1, 2, 2, 3, 3]);
    assert.deepEqual(prefetched.map((r) => r.prefetched === true), [false, false, false, true, false, true, false], "medium and long came from the prefetching worker");
    assert.ok(plain.every((r) => r.prefetched === undefined));
    // Only a switch can wait for a session; the steps inside a stage never do.
    assert.deepEqual(prefetched.map((r, step) => (step === 3 || step === 5 ? 0 : r.loadMs)), [0, 0, 0, 0, 0, 0, 0]);
    // The frames are the model's: checked against the pure reference, not only against each other.
    let window = syntheticWindow(grid.lat, grid.lon);
    SCHEDULE.forEach((stage, step) => {
      window = standinReferenceStep(STAGES[stage]!, window, timeEmbedding(INIT, step), grid);
      assert.ok(bits(prefetched[step]!.frame).equals(bits(window.subarray(window.length / 2))), `step ${step} against the reference`);
    });
  });

  it("fails at the switch, naming the file, when the prefetched stage cannot load; the steps before it are unaffected", async () => {
    const dir = join(work, "broken-medium");
    await writeStandinModels(dir, grid);
    const medium = join(dir, "medium.onnx");
    await writeFile(medium, editOnnxModel(await readFile(medium), (model) => (model.graph.node[1].op_type = "NoSuchOperator")));
    const engine = new InferenceEngine();
    try {
      await engine.init({ modelDir: dir, providers: ["cpu"], intraOpThreads: 1, keepAllStages: false });
      await engine.setWindow(syntheticWindow(grid.lat, grid.lon));
      for (let step = 0; step < 3; step++) await engine.step(0, timeEmbedding(INIT, step), step === 0 ? 1 : undefined);
      await assert.rejects(engine.step(1, timeEmbedding(INIT, 3)), /cannot load model .*medium\.onnx \(with its weights file medium\)/);
    } finally {
      await engine.close();
    }
  });

  it("refuses a prefetched stage on another grid at the switch, as a stage loaded in place is refused", async () => {
    const dir = join(work, "other-grid");
    await writeStandinModels(dir, grid);
    await writeStandinModels(join(work, "small"), { lat: 5, lon: 8 });
    for (const file of ["medium.onnx", "medium"]) await writeFile(join(dir, file), await readFile(join(work, "small", file)));
    const engine = new InferenceEngine();
    try {
      await engine.init({ modelDir: dir, providers: ["cpu"], intraOpThreads: 1, keepAllStages: false });
      await engine.setWindow(syntheticWindow(grid.lat, grid.lon));
      await engine.step(0, timeEmbedding(INIT, 0), 1);
      await assert.rejects(engine.step(1, timeEmbedding(INIT, 1)), /cannot load model .*medium\.onnx .*expects a 5x8 grid but short\.onnx expects 9x16/);
    } finally {
      await engine.close();
    }
  });

  it("runs a [2,2,2] request with FUXI_PREFETCH_NEXT_STAGE=true: reference values, three creations", async () => {
    const s3 = await startLocalS3({ buckets: ["fuxi-data"] });
    const runtime = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: join(work, "good"), FUXI_PREFETCH_NEXT_STAGE: "true" });
    try {
      await runtime.waitUntilReady();
      const input = await writeInputWithXarray(join(work, "input.nc"), { ...grid, initTime: INIT });
      await s3.client.send(new PutObjectCommand({ Bucket: "fuxi-data", Key: "input/2023101206/fuxi_input.nc", Body: input }));
      const response = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("2023101206", [2, 2, 2])));
      assert.equal(response.status, 200, response.body);
      const manifest: Manifest = JSON.parse(response.body);
      const stepLogs = runtime.logs.filter((line) => line.event === RUNTIME_LOG_EVENTS.stepDone) as Array<{ step: number; sessionCreations: number; prefetched?: unknown }>;
      stepLogs.sort((a, b) => a.step - b.step);
      assert.deepEqual(stepLogs.map((l) => l.sessionCreations), [1, 1, 2, 2, 3, 3]);
      // Only the switches to medium and long say so; the other step.done lines stay as before (no field).
      assert.deepEqual(stepLogs.map((l) => ("prefetched" in l ? l.prefetched : "absent")), ["absent", "absent", true, "absent", true, "absent"]);
      let window = syntheticWindow(grid.lat, grid.lon);
      for (const [step, stage] of stageSchedule([2, 2, 2]).entries()) {
        window = standinReferenceStep(STAGES[stage]!, window, timeEmbedding(INIT, step), grid);
        const name = stepFileName(step);
        const object = await s3.client.send(new GetObjectCommand({ Bucket: "fuxi-data", Key: `output/2023101206/${name}` }));
        const decoded = await readForecastStep(await object.Body!.transformToByteArray(), name);
        assert.ok(bits(decoded.data).equals(bits(window.subarray(window.length / 2))), `${name} against the reference`);
      }
      assert.deepEqual(manifest.files.map((f) => f.stage), ["short", "short", "medium", "medium", "long", "long"]);
    } finally {
      await runtime.stop();
      await s3.stop();
    }
  });
});
