// Worker thread that owns the ONNX Runtime sessions and the rolling window.
// onnxruntime-node's session.run is synchronous native work (wrapped in setImmediate), so it must
// not run on the main thread, where it would block /ping for the whole step.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { collectGarbage } from "./collect-garbage";
import { CHECK_INPUT_SAMPLE, CHECK_OUTPUT_SAMPLE, frameOutputsUnsupported, NEW_FRAME_OUTPUT, withFrameOutputs } from "./frame-outputs";
import { CHANNELS } from "./model-check";
import { readOnnxGraphFile } from "./onnx-graph";
import { serveRpc } from "./worker-rpc";
import { STAGE_NAMES } from "./contract";
import type { Provider } from "./config";

export interface InferenceInit {
  modelDir: string;
  providers: Provider[];
  intraOpThreads: number | undefined;
  keepAllStages: boolean;
  /** The stage to load at init (default 0); a prefetching worker loads the next stage. Ignored with keepAllStages. */
  firstStage?: number;
  /** A prefetching worker: the grid of the stages already loaded, which its stage must share. */
  grid?: { lat: number; lon: number };
}

export interface StageIo {
  stage: string;
  windowInput: string;
  tembInput: string;
  output: string;
  /**
   * "new frame": a step fetches out[:, 1] and checks out[:, 0] == in[:, 1] on a sample (frame-outputs.ts);
   * "whole window": it fetches the model's output (the graph cannot take the extra outputs, or the check failed).
   */
  fetches: "new frame" | "whole window";
  /** Why this stage fetches the whole window. */
  wholeWindowReason?: string;
}

export interface InferenceReady {
  grid: { lat: number; lon: number };
  /** The stages loaded so far (the first one at start-up; the others when a run reaches them). */
  stages: StageIo[];
  sessionCreations: number;
}

export interface StepArgs {
  stage: number;
  temb: Float32Array;
}

export interface StepResult {
  /** out[:, -1] ([70, lat, lon]), transferred to the caller (its own ArrayBuffer). */
  frame: Float32Array;
  runMs: number;
  loadMs: number;
  /** Sessions created by this worker so far (one per stage per run, unless FUXI_KEEP_ALL_STAGES keeps them). */
  sessionCreations: number;
  /** Set by the engine on a switch step whose session was created in advance by a second worker (FUXI_PREFETCH_NEXT_STAGE). */
  prefetched?: boolean;
  /** Set on the step where a stage switched to fetching the whole window. */
  warning?: string;
}

let settings: InferenceInit | undefined;
let grid = { lat: 0, lon: 0 };
const stageIo: Array<StageIo | undefined> = [];
let sessionCreations = 0;
const sessions = new Map<number, ort.InferenceSession>();
let window: Float32Array | undefined;

function sessionOptions(init: InferenceInit): ort.InferenceSession.SessionOptions {
  // Same settings as the reference code: no CPU arena, no memory pattern, few intra-op threads.
  return {
    executionProviders: init.providers.map((name) => (name === "cuda" ? { name: "cuda", deviceId: 0 } : { name: "cpu", useArena: false })),
    enableCpuMemArena: false,
    enableMemPattern: false,
    graphOptimizationLevel: "all",
    logSeverityLevel: 3,
    ...(init.intraOpThreads === undefined ? {} : { intraOpNumThreads: init.intraOpThreads }),
  };
}

function modelPath(stage: number): string {
  if (!settings) throw new Error("inference worker not initialised");
  return join(settings.modelDir, `${STAGE_NAMES[stage]}.onnx`);
}

/**
 * Names and grid from the graph (onnx-graph.ts; the server has already checked FuXi's signature on it
 * with model-check.ts), then the session: from the graph with the extra frame outputs when it can take
 * them (loaded from bytes, so ONNX Runtime is told the weights' folder), else from the file.
 */
async function openSession(stage: number): Promise<ort.InferenceSession> {
  const path = modelPath(stage);
  let session: ort.InferenceSession;
  let io: StageIo;
  try {
    const graph = await readOnnxGraphFile(path);
    const windowInput = graph.inputs.find((i) => i.dims?.length === 5);
    const tembInput = graph.inputs.find((i) => i.dims?.length === 2);
    const [output] = graph.outputs;
    const [, , , lat, lon] = windowInput?.dims ?? [];
    if (!windowInput || !tembInput || !output || typeof lat !== "number" || typeof lon !== "number") {
      throw new Error(`expected a 5-D window input with a fixed grid, a 2-D time embedding and an output; it has inputs ${JSON.stringify(graph.inputs)}, outputs ${JSON.stringify(graph.outputs)}`);
    }
    if (grid.lat !== 0 && (lat !== grid.lat || lon !== grid.lon)) {
      throw new Error(`expects a ${lat}x${lon} grid but ${STAGE_NAMES[0]}.onnx expects ${grid.lat}x${grid.lon}`);
    }
    const unsupported = frameOutputsUnsupported(graph);
    io = { stage: STAGE_NAMES[stage], windowInput: windowInput.name, tembInput: tembInput.name, output: output.name, fetches: unsupported ? "whole window" : "new frame", ...(unsupported ? { wholeWindowReason: unsupported } : {}) };
    session = unsupported
      ? await ort.InferenceSession.create(path, sessionOptions(settings!))
      : await ort.InferenceSession.create(withFrameOutputs(await readFile(path), { windowInput: windowInput.name, output: output.name, lat, lon }), {
          ...sessionOptions(settings!),
          extra: { session: { model_external_initializers_file_folder_path: settings!.modelDir } },
        });
    grid = { lat, lon };
  } catch (error) {
    throw new Error(`cannot load model ${path} (with its weights file ${STAGE_NAMES[stage]}): ${(error as Error).message}`);
  }
  sessionCreations++;
  stageIo[stage] = io;
  return session;
}

async function useStage(stage: number): Promise<{ session: ort.InferenceSession; loadMs: number }> {
  const resident = sessions.get(stage);
  if (resident) return { session: resident, loadMs: 0 };
  const started = performance.now();
  if (!settings!.keepAllStages) {
    for (const [other, session] of sessions) {
      await session.release();
      sessions.delete(other);
    }
  }
  const session = await openSession(stage);
  sessions.set(stage, session);
  return { session, loadMs: performance.now() - started };
}

/** One session.run; its own function so that nothing references its feeds once it returns. */
async function runStage(session: ort.InferenceSession, io: StageIo, input: Float32Array, temb: Float32Array, fetches: string[]): Promise<ort.InferenceSession.ReturnType> {
  return session.run(
    {
      [io.windowInput]: new ort.Tensor("float32", input, [1, 2, CHANNELS, grid.lat, grid.lon]),
      [io.tembInput]: new ort.Tensor("float32", temb, [1, 12]),
    },
    fetches,
  );
}

function float32Output(outputs: ort.InferenceSession.ReturnType, name: string, io: StageIo, values: number): Float32Array {
  const tensor = outputs[name];
  if (tensor?.type !== "float32" || tensor.size !== values) {
    throw new Error(`model ${io.stage} output ${name} is ${tensor?.type} ${JSON.stringify(tensor?.dims)}, expected ${values} float32 values`);
  }
  return tensor.data as Float32Array;
}

/** Bit-for-bit equality (NaN and -0 included, unlike ===). */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** A typed array that owns its whole ArrayBuffer (so that transferring it moves exactly these values). */
function owned(values: Float32Array): Float32Array {
  return values.byteOffset === 0 && values.buffer.byteLength === values.byteLength ? values : values.slice();
}

serveRpc({
  /**
   * Loads the first stage only (the server has checked every stage's graph without its weights,
   * `checkModelGraphs`): /ping is healthy without throw-away loads, and each later stage is created once, when the run reaches it (a stage
   * that fails then fails the run, naming its file). With FUXI_KEEP_ALL_STAGES all three are loaded
   * here and stay resident. onnxruntime-node 1.30 builds a session synchronously on the calling thread,
   * so a prefetch of the next stage runs in a second worker of this kind (InferenceEngine.prefetch).
   */
  async init(init: InferenceInit) {
    settings = init;
    if (init.grid) grid = init.grid;
    const stages = init.keepAllStages ? STAGE_NAMES.map((_, stage) => stage) : [init.firstStage ?? 0];
    for (const stage of stages) sessions.set(stage, await openSession(stage));
    return { result: { grid, stages: stageIo.filter((io): io is StageIo => io !== undefined), sessionCreations } satisfies InferenceReady };
  },

  /** Starts a run: sets the window [2, 70, lat, lon] the next step reads (transferred; this worker owns it). */
  async setWindow(args: { window: Float32Array }) {
    const expected = 2 * CHANNELS * grid.lat * grid.lon;
    if (args.window.length !== expected) throw new Error(`window has ${args.window.length} values, expected ${expected}`);
    window = owned(args.window);
    return { result: null };
  },

  /**
   * One step. Normally it fetches only out[:, 1] and rolls the window in place, [in[:, 1], out[:, 1]],
   * which is the model's own next window because the sampled out[:, 0] equals in[:, 1] bit for bit
   * (checked every step). When it does not, the step is run again fetching the whole window, and the
   * stage keeps doing so for as long as it is loaded (with a warning, once).
   */
  async step(args: StepArgs) {
    if (!window) throw new Error("step called before setWindow");
    const { session, loadMs } = await useStage(args.stage);
    const io = stageIo[args.stage]!;
    const frameSize = CHANNELS * grid.lat * grid.lon;
    const started = performance.now();
    let frame: Float32Array | undefined;
    let warning: string | undefined;
    if (io.fetches === "new frame") {
      const outputs = await runStage(session, io, window, args.temb, [NEW_FRAME_OUTPUT, CHECK_OUTPUT_SAMPLE, CHECK_INPUT_SAMPLE]);
      const sample = outputs[CHECK_INPUT_SAMPLE]?.size ?? 0;
      if (sameBits(float32Output(outputs, CHECK_OUTPUT_SAMPLE, io, sample), float32Output(outputs, CHECK_INPUT_SAMPLE, io, sample))) {
        frame = owned(float32Output(outputs, NEW_FRAME_OUTPUT, io, frameSize));
        window.copyWithin(0, frameSize);
        window.set(frame, frameSize);
      } else {
        io.fetches = "whole window";
        io.wholeWindowReason = "out[:, 0] differed from in[:, 1] on the check sample";
        warning = `model ${io.stage}: its output's first frame is not its input's second frame, so the runtime fetches the whole window from now on (more memory per step; a resumed run cannot be byte-identical to an uninterrupted one for this model)`;
      }
    }
    if (io.fetches === "whole window") {
      const outputs = await runStage(session, io, window, args.temb, [io.output]);
      // onnxruntime-node 1.30 hands every output back in a fresh ArrayBuffer, so it becomes the window.
      window = owned(float32Output(outputs, io.output, io, 2 * frameSize));
      frame = window.slice(frameSize);
    }
    const runMs = performance.now() - started;
    collectGarbage(); // ORT's returned buffers (and the previous window) now, not when V8 next looks
    return { result: { frame: frame!, runMs, loadMs, sessionCreations, ...(warning ? { warning } : {}) } satisfies StepResult, transfer: [frame!.buffer as ArrayBuffer] };
  },

  /** Hands the window over (transferred) to the worker that runs the next stage; this one no longer has it. */
  async takeWindow() {
    if (!window) throw new Error("takeWindow called without a window");
    const taken = window;
    window = undefined;
    return { result: taken, transfer: [taken.buffer as ArrayBuffer] };
  },

  /** Ends a run: drops the window. */
  async releaseWindow() {
    window = undefined;
    collectGarbage();
    return { result: null };
  },
});
