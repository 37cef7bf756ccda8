// Main-thread side of the NetCDF worker. Paths are local files in the scratch directory.
import { RpcWorker } from "./worker-rpc";
import type { FuxiInput, ForecastStep } from "./netcdf";

export class Codec {
  private readonly worker = new RpcWorker("codec-worker");

  /** `encodeThreads`: worker threads that compress gzip/bitround steps (started on the first such step). */
  constructor(private readonly encodeThreads = 1) {}

  /** Decodes and validates the FuXi input file at `path`; `file` names it in errors. */
  readInput(path: string, file: string, expected: { lat: number; lon: number }): Promise<FuxiInput> {
    return this.worker.call("readInput", { path, file, expected });
  }

  readStep(path: string, file: string): Promise<ForecastStep> {
    return this.worker.call("readStep", { path, file });
  }

  /**
   * Writes a step file and returns its SHA-256 (hex); `ms` is the time in the worker (write + hash).
   * `step.data` is transferred to the worker (unusable here afterwards), which drops it once written;
   * lat/lon are small and copied.
   */
  writeStep(step: ForecastStep, path: string): Promise<{ ms: number; bytes: number; sha256: string }> {
    return this.worker.call("writeStep", { step, path, encodeThreads: this.encodeThreads }, [step.data.buffer as ArrayBuffer]);
  }

  /** Ends the worker (and its encode threads) and frees its WASM heap. */
  close(): Promise<void> {
    return this.worker.terminate();
  }
}
