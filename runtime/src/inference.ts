// Main-thread side of the inference worker.
import { RpcWorker } from "./worker-rpc";
import type { InferenceInit, InferenceReady, StepResult } from "./inference-worker";

export class InferenceEngine {
  private readonly worker = new RpcWorker("inference-worker");

  init(init: InferenceInit): Promise<InferenceReady> {
    return this.worker.call("init", init);
  }

  /** Window [2, 70, lat, lon], transferred. */
  setWindow(window: Float32Array): Promise<void> {
    return this.worker.call("setWindow", { window }, [window.buffer as ArrayBuffer]);
  }

  /** Runs global step with `temb` on `stage`; `frame` is transferred and returned filled with out[:, -1]. */
  step(stage: number, temb: Float32Array, frame: Float32Array): Promise<StepResult> {
    return this.worker.call("step", { stage, temb, frame }, [frame.buffer as ArrayBuffer]);
  }

  releaseWindow(): Promise<void> {
    return this.worker.call("releaseWindow", {});
  }

  close(): Promise<void> {
    return this.worker.terminate();
  }
}
