// Worker thread that owns the ONNX Runtime sessions and the rolling window.
// onnxruntime-node's session.run is synchronous native work (wrapped in setImmediate), so it must
// not run on the main thread, where it would block /ping for the whole step.
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { collectGarbage } from "./collect-garbage";
import { FRAME_BUSY, FRAME_FREE } from "./frame-states";
import { serveRpc } from "./worker-rpc";
import { STAGE_NAMES } from "./contract";
import type { Provider } from "./config";

export interface InferenceInit {
  modelDir: string;
  providers: Provider[];
  intraOpThreads: number | undefined;
  keepAllStages: boolean;
}

export interface StageIo {
  stage: string;
  windowInput: string;
  tembInput: string;
  output: string;
}

export interface InferenceReady {
  grid: { lat: number; lon: number };
  /** The stages loaded so far (the first one at start-up; the others when a run reaches them). */
  stages: StageIo[];
  /** Shared with the main thread: frameStates[i] is FRAME_BUSY from step() until the caller frees frame i. */
  frameStates: Int32Array;
  sessionCreations: number;
}

export interface StepArgs {
  stage: number;
  temb: Float32Array;
}

export interface StepResult {
  /** out[:, -1] ([70, lat, lon]) in shared memory; read it, then set frameStates[frameIndex] to FRAME_FREE. */
  frame: Float32Array;
  frameIndex: number;
  runMs: number;
  loadMs: number;
  /** Sessions created by this worker so far (one per stage per run, unless FUXI_KEEP_ALL_STAGES keeps them). */
  sessionCreations: number;
}

/** More frames than FUXI_STEPS_IN_FLIGHT (at most 8) can ever hold at once. */
const MAX_FRAMES = 16;
const CHANNELS = 70;

let settings: InferenceInit | undefined;
let grid = { lat: 0, lon: 0 };
const stageIo: Array<StageIo | undefined> = [];
let sessionCreations = 0;
const sessions = new Map<number, ort.InferenceSession>();
let window: Float32Array | undefined;

// Frames for out[:, -1] are SharedArrayBuffers: the encoder reads them where they are (no copy, no
// transfer), and this thread can see which are free without receiving a message, which it could not
// do while session.run blocks it. Encoding a step takes a fraction of a step's run, so one frame is
// normally enough; another is allocated only when every frame is still being encoded.
const frameStates = new Int32Array(new SharedArrayBuffer(MAX_FRAMES * Int32Array.BYTES_PER_ELEMENT));
let frames: Float32Array[] = [];

function claimFrame(size: number): number {
  for (let index = 0; index < frames.length; index++) {
    if (Atomics.compareExchange(frameStates, index, FRAME_FREE, FRAME_BUSY) === FRAME_FREE) return index;
  }
  if (frames.length === MAX_FRAMES) throw new Error(`internal: all ${MAX_FRAMES} frames are still being encoded`);
  frames.push(new Float32Array(new SharedArrayBuffer(size * Float32Array.BYTES_PER_ELEMENT)));
  Atomics.store(frameStates, frames.length - 1, FRAME_BUSY);
  return frames.length - 1;
}

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

async function openSession(stage: number): Promise<ort.InferenceSession> {
  const path = modelPath(stage);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(path, sessionOptions(settings!));
  } catch (error) {
    throw new Error(`cannot load model ${path} (with its weights file ${STAGE_NAMES[stage]}): ${(error as Error).message}`);
  }
  sessionCreations++;
  try {
    const { io, grid: stageGrid } = describe(stage, session);
    if (grid.lat === 0) grid = stageGrid;
    else if (stageGrid.lat !== grid.lat || stageGrid.lon !== grid.lon) {
      throw new Error(`model ${path} expects a ${stageGrid.lat}x${stageGrid.lon} grid but ${STAGE_NAMES[0]}.onnx expects ${grid.lat}x${grid.lon}`);
    }
    stageIo[stage] = io;
  } catch (error) {
    await session.release();
    throw error;
  }
  return session;
}

/** Reads the input/output names from the session and checks FuXi's shapes. */
function describe(stage: number, session: ort.InferenceSession): { io: StageIo; grid: { lat: number; lon: number } } {
  const path = modelPath(stage);
  const tensors = session.inputMetadata.filter((m): m is ort.InferenceSession.TensorValueMetadata => m.isTensor);
  const windowInput = tensors.find((m) => m.shape.length === 5);
  const tembInput = tensors.find((m) => m.shape.length === 2);
  if (session.inputNames.length !== 2 || !windowInput || !tembInput) {
    throw new Error(`model ${path} must have two inputs, a 5-D window and a [1,12] time embedding; it has ${JSON.stringify(session.inputMetadata)}`);
  }
  if (windowInput.type !== "float32" || tembInput.type !== "float32") throw new Error(`model ${path} inputs must be float32`);
  const [batch, frames, channels, lat, lon] = windowInput.shape;
  if (batch !== 1 || frames !== 2 || channels !== CHANNELS) {
    throw new Error(`model ${path} input ${windowInput.name} has shape ${JSON.stringify(windowInput.shape)}, expected [1,2,70,lat,lon]`);
  }
  if (session.outputNames.length < 1) throw new Error(`model ${path} has no output`);
  const fixed = (d: number | string, fallback: number) => (typeof d === "number" ? d : fallback);
  return {
    io: { stage: STAGE_NAMES[stage], windowInput: windowInput.name, tembInput: tembInput.name, output: session.outputNames[0] },
    grid: { lat: fixed(lat, 721), lon: fixed(lon, 1440) },
  };
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

/** One session.run; its own function so that nothing references the input window once it returns. */
async function runStage(session: ort.InferenceSession, io: StageIo, input: Float32Array, temb: Float32Array): Promise<ort.Tensor> {
  const outputs = await session.run({
    [io.windowInput]: new ort.Tensor("float32", input, [1, 2, CHANNELS, grid.lat, grid.lon]),
    [io.tembInput]: new ort.Tensor("float32", temb, [1, 12]),
  });
  return outputs[io.output];
}

serveRpc({
  /**
   * Loads the first stage only (the server has checked every stage's graph without its weights,
   * `checkModelGraphs`): /ping is healthy without throw-away loads, and each later stage is created once, when the run reaches it (a stage
   * that fails then fails the run, naming its file). With FUXI_KEEP_ALL_STAGES all three are loaded
   * here and stay resident. (No prefetch of the next stage during a run: onnxruntime-node 1.30 builds
   * a session synchronously on the calling thread, so on this thread it could not overlap a step.)
   */
  async init(init: InferenceInit) {
    settings = init;
    for (let stage = 0; stage < (init.keepAllStages ? STAGE_NAMES.length : 1); stage++) sessions.set(stage, await openSession(stage));
    return { result: { grid, stages: stageIo.filter((io): io is StageIo => io !== undefined), frameStates, sessionCreations } satisfies InferenceReady };
  },

  /** Starts a run: sets the window [2, 70, lat, lon] the next step reads. */
  async setWindow(args: { window: Float32Array }) {
    const expected = 2 * CHANNELS * grid.lat * grid.lon;
    if (args.window.length !== expected) throw new Error(`window has ${args.window.length} values, expected ${expected}`);
    window = args.window;
    return { result: null };
  },

  async step(args: StepArgs) {
    if (!window) throw new Error("step called before setWindow");
    const { session, loadMs } = await useStage(args.stage);
    const io = stageIo[args.stage]!;
    const started = performance.now();
    const out = await runStage(session, io, window, args.temb);
    const runMs = performance.now() - started;
    const frameSize = CHANNELS * grid.lat * grid.lon;
    if (out.type !== "float32" || out.size !== 2 * frameSize) {
      throw new Error(`model ${io.stage} output ${io.output} is ${out.type} ${JSON.stringify(out.dims)}, expected float32 [1,2,70,${grid.lat},${grid.lon}]`);
    }
    // onnxruntime-node 1.30 hands every output back in a fresh ArrayBuffer (it copies even into
    // pre-allocated fetches), so the returned tensor becomes the next window and the old one is dropped.
    window = out.data as Float32Array;
    collectGarbage(); // the previous window
    const frameIndex = claimFrame(frameSize);
    frames[frameIndex].set(window.subarray(frameSize));
    return { result: { frame: frames[frameIndex], frameIndex, runMs, loadMs, sessionCreations } satisfies StepResult };
  },

  /** Ends a run (the caller has freed or abandoned every frame): drops the window and the frames. */
  async releaseWindow() {
    window = undefined;
    frames = [];
    frameStates.fill(FRAME_FREE);
    collectGarbage();
    return { result: null };
  },
});
