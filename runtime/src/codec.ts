// Main-thread side of the NetCDF worker.
import { RpcWorker } from "./worker-rpc";
import type { FuxiInput, ForecastStep } from "./netcdf";

export class Codec {
  private readonly worker = new RpcWorker("codec-worker");

  /** Decodes the FuXi input; `bytes` is transferred (unusable afterwards). */
  readInput(bytes: Uint8Array, file: string, expected: { lat: number; lon: number }): Promise<FuxiInput> {
    return this.worker.call("readInput", { bytes, file, expected }, [bytes.buffer as ArrayBuffer]);
  }

  readStep(bytes: Uint8Array, file: string): Promise<ForecastStep> {
    return this.worker.call("readStep", { bytes, file }, [bytes.buffer as ArrayBuffer]);
  }

  /** Encodes a step; its data buffer is transferred and comes back as `frame`; `ms` is the encode time in the worker. */
  encodeStep(step: ForecastStep): Promise<{ bytes: Uint8Array; frame: Float32Array; ms: number }> {
    // lat/lon are small and copied, so the caller keeps its own.
    return this.worker.call("encodeStep", { step }, [step.data.buffer as ArrayBuffer]);
  }

  /** Ends the worker and frees its WASM heap. */
  close(): Promise<void> {
    return this.worker.terminate();
  }
}
