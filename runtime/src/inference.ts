// Main-thread side of the inference worker.
import { RpcWorker } from "./worker-rpc";
import type { InferenceInit, InferenceReady, StepResult } from "./inference-worker";

export class InferenceEngine {
  private readonly worker = new RpcWorker("inference-worker");

  init(init: InferenceInit): Promise<InferenceReady> {
    return this.worker.call<InferenceReady>("init", init);
  }

  /** Window [2, 70, lat, lon], transferred. */
  setWindow(window: Float32Array): Promise<void> {
    return this.worker.call("setWindow", { window }, [window.buffer as ArrayBuffer]);
  }

  /** Runs global step with `temb` on `stage`; the result's frame (out[:, -1]) is the caller's. */
  step(stage: number, temb: Float32Array): Promise<StepResult> {
    return this.worker.call("step", { stage, temb });
  }

  releaseWindow(): Promise<void> {
    return this.worker.call("releaseWindow", {});
  }

  close(): Promise<void> {
    return this.worker.terminate();
  }
}
