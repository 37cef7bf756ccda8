// Main-thread side of the NetCDF worker. Paths are local files in the scratch directory.
import { RpcWorker } from "./worker-rpc";
import type { FuxiInput, ForecastStep } from "./netcdf";

export class Codec {
  private readonly worker = new RpcWorker("codec-worker");

  /** Decodes and validates the FuXi input file at `path`; `file` names it in errors. */
  readInput(path: string, file: string, expected: { lat: number; lon: number }): Promise<FuxiInput> {
    return this.worker.call("readInput", { path, file, expected });
  }

  readStep(path: string, file: string): Promise<ForecastStep> {
    return this.worker.call("readStep", { path, file });
  }

  /** Writes a step file; its data buffer is transferred and comes back as `frame`; `ms` is the time in the worker. */
  writeStep(step: ForecastStep, path: string): Promise<{ frame: Float32Array; ms: number }> {
    // lat/lon are small and copied, so the caller keeps its own.
    return this.worker.call("writeStep", { step, path }, [step.data.buffer as ArrayBuffer]);
  }

  /** Ends the worker and frees its WASM heap. */
  close(): Promise<void> {
    return this.worker.terminate();
  }
}
