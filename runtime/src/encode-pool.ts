// Worker threads that compress the fields of a step in parallel (each field is one HDF5 chunk).
// A step's fields are handed out in small batches, so a slow thread does not hold up the rest.
import type { FieldEncoder } from "./netcdf/forecast-step";
import type { FieldEncoding } from "./netcdf/chunk-codec";
import { RpcWorker } from "./worker-rpc";

/** Fields per batch: 70 fields over 2 … 8 threads balance well at 2 fields (8 MB) per call. */
const FIELDS_PER_BATCH = 2;

export class EncodePool {
  private readonly workers: RpcWorker[];

  constructor(readonly threads: number) {
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`encode pool: ${threads} threads`);
    this.workers = Array.from({ length: threads }, () => new RpcWorker("encode-worker"));
  }

  /** Shared memory is read in place by the workers; other data is copied to them a batch at a time. */
  readonly encodeFields: FieldEncoder = async (data, cells, encodings) => {
    const shared = data.buffer instanceof SharedArrayBuffer;
    const chunks = new Array<Uint8Array>(encodings.length);
    let next = 0;
    const drain = async (worker: RpcWorker) => {
      while (next < encodings.length) {
        const first = next;
        const batch: FieldEncoding[] = encodings.slice(first, first + FIELDS_PER_BATCH);
        next += batch.length;
        const fields = shared ? data.subarray(first * cells, (first + batch.length) * cells) : data.slice(first * cells, (first + batch.length) * cells);
        const encoded = await worker.call<Uint8Array[]>("encodeFields", { data: fields, cells, encodings: batch }, shared ? [] : [fields.buffer as ArrayBuffer]);
        encoded.forEach((chunk, i) => (chunks[first + i] = chunk));
      }
    };
    await Promise.all(this.workers.map(drain));
    return chunks;
  };

  close(): Promise<void[]> {
    return Promise.all(this.workers.map((w) => w.terminate()));
  }
}
