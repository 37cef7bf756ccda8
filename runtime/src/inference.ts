// Main-thread side of the inference worker.
import { RpcWorker } from "./worker-rpc";
import { FRAME_FREE } from "./frame-states";
import type { InferenceInit, InferenceReady, StepResult } from "./inference-worker";

export class InferenceEngine {
  private readonly worker = new RpcWorker("inference-worker");

  private frameStates: Int32Array | undefined;

  async init(init: InferenceInit): Promise<InferenceReady> {
    const ready = await this.worker.call<InferenceReady>("init", init);
    this.frameStates = ready.frameStates;
    return ready;
  }

  /** Window [2, 70, lat, lon], transferred. */
  setWindow(window: Float32Array): Promise<void> {
    return this.worker.call("setWindow", { window }, [window.buffer as ArrayBuffer]);
  }

  /** Runs global step with `temb` on `stage`; the result's frame (out[:, -1]) stays valid until freeFrame. */
  step(stage: number, temb: Float32Array): Promise<StepResult> {
    return this.worker.call("step", { stage, temb });
  }

  /** Gives frame `index` back to the inference worker once it has been encoded. */
  freeFrame(index: number): void {
    Atomics.store(this.frameStates!, index, FRAME_FREE);
  }

  releaseWindow(): Promise<void> {
    return this.worker.call("releaseWindow", {});
  }

  close(): Promise<void> {
    return this.worker.terminate();
  }
}
