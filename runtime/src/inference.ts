// Main-thread side of the inference workers: one runs the steps; with FUXI_PREFETCH_NEXT_STAGE a
// second one creates the next stage's session while the current stage runs (onnxruntime-node 1.30
// builds a session synchronously on its thread, so it cannot overlap a step in the same worker), and
// takes over the window, transferred, at the stage switch; the first worker then ends with its session.
import { RpcWorker } from "./worker-rpc";
import { STAGE_NAMES, type StageName } from "./contract";
import type { InferenceInit, InferenceReady, StepResult } from "./inference-worker";

interface Prefetch {
  stage: number;
  worker: RpcWorker;
  /** Settles when the next stage's session exists; a load failure is kept here and raised at the switch. */
  ready: Promise<InferenceReady>;
}

export class InferenceEngine {
  private worker = new RpcWorker("inference-worker");
  private settings: InferenceInit | undefined;
  /** The grid of the first stage loaded: a prefetched stage must have it too. */
  private grid: InferenceReady["grid"] | undefined;
  private prefetched: Prefetch | undefined;
  /** Sessions created by workers that have ended, plus the last count the current worker reported. */
  private retiredCreations = 0;
  private workerCreations = 0;
  private stageFiles: (stage: number) => Promise<void> = () => Promise.resolve();
  private readonly stagesWithFiles = new Set<number>();
  /** The worker a switch replaced, ending. */
  private retiring: Promise<unknown> = Promise.resolve();

  /** The model folder's gate: a stage's session is created only once its files have arrived (model-store.ts). */
  waitForStageFiles(stageReady: (stage: number) => Promise<void>): void {
    this.stageFiles = stageReady;
  }

  async init(init: InferenceInit): Promise<InferenceReady> {
    this.settings = init;
    const ready = await this.worker.call<InferenceReady>("init", init);
    this.grid = ready.grid;
    this.workerCreations = ready.sessionCreations;
    for (const io of ready.stages) this.stagesWithFiles.add(STAGE_NAMES.indexOf(io.stage as StageName)); // loaded, so their files are in
    return ready;
  }

  /** Window [2, 70, lat, lon], transferred. */
  setWindow(window: Float32Array): Promise<void> {
    return this.worker.call("setWindow", { window }, [window.buffer as ArrayBuffer]);
  }

  /** Starts creating `stage`'s session in a second worker, to take over when a step of that stage comes. */
  private prefetch(stage: number): void {
    if (!this.settings) throw new Error("prefetch called before init");
    if (this.settings.keepAllStages || this.prefetched?.stage === stage) return;
    void this.dropPrefetch();
    const worker = new RpcWorker("inference-worker");
    const ready = this.stageFiles(stage).then(() => worker.call<InferenceReady>("init", { ...this.settings!, firstStage: stage, grid: this.grid }));
    ready.catch(() => undefined); // raised at the switch, where the run fails naming the file
    this.prefetched = { stage, worker, ready };
  }

  /**
   * Runs global step with `temb` on `stage`; the result's frame (out[:, -1]) is the caller's. When a
   * prefetched worker holds `stage`, it takes the window first; `loadMs` is then the wait for its
   * session (zero when the prefetch finished in time) plus the handover. Otherwise `loadMs` includes
   * any wait for the stage's weights to finish downloading. With `prefetchStage` (needs
   * the memory of two resident stages; the caller decides, FUXI_PREFETCH_NEXT_STAGE) that stage's
   * session is started in a second worker once this step's own stage is in place, so it overlaps this step.
   */
  async step(stage: number, temb: Float32Array, prefetchStage?: number): Promise<StepResult> {
    let switchMs = 0;
    let prefetched = false;
    if (this.prefetched?.stage === stage) {
      const started = performance.now();
      const next = this.prefetched;
      this.prefetched = undefined;
      try {
        const ready = await next.ready;
        const window = await this.worker.call<Float32Array>("takeWindow", {});
        await next.worker.call("setWindow", { window }, [window.buffer as ArrayBuffer]);
        this.retiredCreations += this.workerCreations;
        this.workerCreations = ready.sessionCreations;
      } catch (error) {
        await next.worker.terminate();
        throw error;
      }
      const previous = this.worker;
      this.worker = next.worker;
      // The old stage's worker and session end in the background: the step need not wait for that.
      this.retiring = previous.terminate().catch(() => undefined);
      switchMs = performance.now() - started;
      prefetched = true;
      this.stagesWithFiles.add(stage);
    } else if (!this.stagesWithFiles.has(stage)) {
      // Resolved at once unless this stage's weights are still downloading; the wait counts as loading.
      const waitStarted = performance.now();
      await this.stageFiles(stage);
      this.stagesWithFiles.add(stage);
      switchMs = performance.now() - waitStarted;
    }
    if (prefetchStage !== undefined && prefetchStage !== stage) this.prefetch(prefetchStage);
    const result = await this.worker.call<StepResult>("step", { stage, temb });
    this.workerCreations = result.sessionCreations;
    return { ...result, loadMs: result.loadMs + switchMs, sessionCreations: this.retiredCreations + this.workerCreations, ...(prefetched ? { prefetched } : {}) };
  }

  async releaseWindow(): Promise<void> {
    await this.dropPrefetch();
    await this.worker.call("releaseWindow", {});
  }

  async close(): Promise<void> {
    await this.dropPrefetch();
    await this.retiring;
    await this.worker.terminate();
  }

  private async dropPrefetch(): Promise<void> {
    const dropped = this.prefetched;
    this.prefetched = undefined;
    if (dropped) await dropped.worker.terminate();
  }
}
