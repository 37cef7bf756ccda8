// The inference worker fetches only the new frame out[:, 1] (frame-outputs.ts) and rolls the window
// in place; it checks out[:, 0] == in[:, 1] on a sample every step and falls back to the whole window
// when a model breaks that. Checked against plain ONNX Runtime sessions on the unmodified files.
import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
// onnxruntime-node is a runtime dependency only (runtime/node_modules).
import * as ort from "../runtime/node_modules/onnxruntime-node";
import { editOnnxModel, writeStandinModels } from "../tools/standin-model";
import { CHECK_INPUT_SAMPLE, CHECK_OUTPUT_SAMPLE, CHECK_STRIDE, frameOutputsUnsupported, NEW_FRAME_OUTPUT, sampled, withFrameOutputs } from "../runtime/src/frame-outputs";
import { InferenceEngine } from "../runtime/src/inference";
import { readOnnxGraphFile } from "../runtime/src/onnx-graph";
import { tempDir } from "./support/runtime-harness";

const grid = { lat: 9, lon: 16 };
const FRAME = 70 * grid.lat * grid.lon;

function window(seed: number): Float32Array {
  const values = new Float32Array(2 * FRAME);
  for (let i = 0; i < values.length; i++) values[i] = Math.sin(i * 0.37 + seed) * 50 + 250;
  return values;
}

const temb = (step: number) => new Float32Array(12).map((_, i) => Math.cos(step + i));

/** Whole-window rolling with a plain session on the file: the model's own semantics. */
async function plainFrames(path: string, start: Float32Array, steps: number): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(path, { executionProviders: ["cpu"] });
  try {
    const frames: Float32Array[] = [];
    let current = start.slice();
    for (let step = 0; step < steps; step++) {
      const out = await session.run({ input: new ort.Tensor("float32", current, [1, 2, 70, grid.lat, grid.lon]), temb: new ort.Tensor("float32", temb(step), [1, 12]) });
      current = (out[session.outputNames[0]!]!.data as Float32Array).slice();
      frames.push(current.slice(FRAME));
    }
    return frames;
  } finally {
    await session.release();
  }
}

async function engineFrames(dir: string, start: Float32Array, steps: number) {
  const engine = new InferenceEngine();
  try {
    const ready = await engine.init({ modelDir: dir, providers: ["cpu"], intraOpThreads: 1, keepAllStages: false });
    await engine.setWindow(start.slice());
    const results = [];
    for (let step = 0; step < steps; step++) results.push(await engine.step(0, temb(step)));
    return { ready, results };
  } finally {
    await engine.close();
  }
}

const bits = (values: Float32Array) => Buffer.from(values.buffer, values.byteOffset, values.byteLength);

describe("runtime: new-frame fetches", function () {
  this.timeout(120_000);
  let work: string;

  before(async () => {
    work = await tempDir("runtime-frame-outputs");
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it("adds the new frame and the two check samples to the graph, equal to slices of the model's output", async () => {
    const dir = join(work, "graph");
    await writeStandinModels(dir, grid);
    const path = join(dir, "medium.onnx");
    const graph = await readOnnxGraphFile(path);
    assert.equal(frameOutputsUnsupported(graph), undefined);
    const bytes = withFrameOutputs(await readFile(path), { windowInput: "input", output: graph.outputs[0]!.name, ...grid });
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ["cpu"], extra: { session: { model_external_initializers_file_folder_path: dir } } });
    const input = window(1);
    const feeds = { input: new ort.Tensor("float32", input, [1, 2, 70, grid.lat, grid.lon]), temb: new ort.Tensor("float32", temb(3), [1, 12]) };
    const fetched = await session.run(feeds, [NEW_FRAME_OUTPUT, CHECK_OUTPUT_SAMPLE, CHECK_INPUT_SAMPLE]);
    const whole = (await session.run(feeds, [graph.outputs[0]!.name]))[graph.outputs[0]!.name]!.data as Float32Array;
    await session.release();
    assert.deepEqual(fetched[NEW_FRAME_OUTPUT]!.dims, [1, 1, 70, grid.lat, grid.lon]);
    assert.ok(bits(fetched[NEW_FRAME_OUTPUT]!.data as Float32Array).equals(bits(whole.subarray(FRAME))));
    const sample = [1, 1, 70, sampled(grid.lat), sampled(grid.lon)];
    assert.deepEqual(fetched[CHECK_OUTPUT_SAMPLE]!.dims, sample);
    // Element (c, i, j) of the samples is (c, i·stride, j·stride) of out[:, 0] and in[:, 1].
    const at = (c: number, i: number, j: number) => (c * grid.lat + i * CHECK_STRIDE) * grid.lon + j * CHECK_STRIDE;
    const outSample = fetched[CHECK_OUTPUT_SAMPLE]!.data as Float32Array;
    const inSample = fetched[CHECK_INPUT_SAMPLE]!.data as Float32Array;
    for (const [c, i, j] of [[0, 0, 0], [69, 1, 2], [33, 1, 1]] as const) {
      const k = (c * sample[3]! + i) * sample[4]! + j;
      assert.equal(outSample[k], whole[at(c, i, j)]);
      assert.equal(inSample[k], input[FRAME + at(c, i, j)]);
    }
  });

  it("rolls the window from the new frame: every frame bit-identical to whole-window rolling", async () => {
    const dir = join(work, "good");
    await writeStandinModels(dir, grid);
    // The stand-in's new frame depends on in[:, 1] only; add the trend in[:, 1] - in[:, 0] so that a
    // wrong first frame of the rolled window shows in the next step's output.
    const path = join(dir, "short.onnx");
    await writeFile(path, editOnnxModel(await readFile(path), (model) => {
      model.graph.initializer.push({ name: "first_start", dims: [1], data_type: 7, int64_data: [0] });
      const concat = model.graph.node.findIndex((n: { op_type: string }) => n.op_type === "Concat");
      const next = model.graph.node[concat].input[1];
      model.graph.node.splice(concat, 0,
        { op_type: "Slice", name: "previous", input: ["input", "first_start", "slice_start", "slice_axis"], output: ["previous"] },
        { op_type: "Sub", name: "trend", input: ["current", "previous"], output: ["trend"] },
        { op_type: "Add", name: "next_with_trend", input: [next, "trend"], output: ["next_with_trend"] });
      model.graph.node[concat + 3].input[1] = "next_with_trend";
    }));
    const start = window(2);
    const { ready, results } = await engineFrames(dir, start, 4);
    assert.equal(ready.stages[0]!.fetches, "new frame");
    const expected = await plainFrames(join(dir, "short.onnx"), start, 4);
    results.forEach((r, step) => {
      assert.equal(r.warning, undefined);
      assert.ok(bits(r.frame).equals(bits(expected[step]!)), `frame of step ${step}`);
    });
  });

  it("falls back to the whole window, with a warning, for a model whose out[:, 0] is not in[:, 1]", async () => {
    const dir = join(work, "not-a-shift");
    await writeStandinModels(dir, grid);
    const path = join(dir, "short.onnx");
    // out = Concat(next, next): out[:, 0] is the new frame, not the input's second frame.
    await writeFile(path, editOnnxModel(await readFile(path), (model) => {
      const concat = model.graph.node.find((n: { op_type: string }) => n.op_type === "Concat");
      concat.input[0] = concat.input[1];
    }));
    const start = window(3);
    const { results } = await engineFrames(dir, start, 4);
    assert.match(results[0]!.warning ?? "", /model short: its output's first frame is not its input's second frame, so the runtime fetches the whole window/);
    assert.deepEqual(results.slice(1).map((r) => r.warning), [undefined, undefined, undefined], "warned once");
    const expected = await plainFrames(path, start, 4);
    results.forEach((r, step) => assert.ok(bits(r.frame).equals(bits(expected[step]!)), `frame of step ${step}`));
  });

  it("leaves graphs it cannot extend to the whole window, saying why", async () => {
    const dir = join(work, "old-opset");
    await writeStandinModels(dir, grid);
    const graph = await readOnnxGraphFile(join(dir, "long.onnx"));
    assert.match(frameOutputsUnsupported({ ...graph, opsets: [{ domain: "", version: 9 }] }) ?? "", /opset is 9; Slice with step inputs needs 10/);
    assert.match(frameOutputsUnsupported({ ...graph, outputs: [{ name: NEW_FRAME_OUTPUT, type: "float32", dims: [1] }] }) ?? "", /already has a value named fuxi_runtime_new_frame/);
  });
});
