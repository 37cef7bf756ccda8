// Worker thread for NetCDF decoding and encoding: h5wasm is synchronous WASM and a full-grid
// file takes seconds, which must never block the main thread (SageMaker pings time out after 2 s).
// Files are local paths in the scratch directory (h5wasm's Node build reads and writes real files).
import { collectGarbage } from "./collect-garbage";
import { EncodePool } from "./encode-pool";
import { serveRpc } from "./worker-rpc";
import { readFuxiInputFile, readForecastStepFile, writeForecastStepFile, type ForecastStep } from "./netcdf";
import { sha256OfFile } from "./sha256";

function buffersOf(...arrays: ArrayBufferView[]): ArrayBuffer[] {
  const unique = new Set<ArrayBuffer>();
  for (const array of arrays) unique.add(array.buffer as ArrayBuffer);
  return [...unique];
}

/** Started with the first compressed step; its threads end with this worker. */
let pool: EncodePool | undefined;

serveRpc({
  async readInput(args: { path: string; file: string; expected: { lat: number; lon: number } }) {
    const input = await readFuxiInputFile(args.path, args.file, args.expected);
    return { result: input, transfer: buffersOf(input.data, input.lat, input.lon) };
  },

  async readStep(args: { path: string; file: string }) {
    const step = await readForecastStepFile(args.path, args.file);
    return { result: step, transfer: buffersOf(step.data, step.lat, step.lon) };
  },

  /**
   * Writes one step to `path` (compressed chunks come from the pool) and hashes the file (here, off
   * the main thread). The step's data was transferred here and is dead once written: collected now.
   */
  async writeStep(args: { step: ForecastStep; path: string; encodeThreads: number }) {
    const started = performance.now();
    if (args.step.compression !== "none") pool ??= new EncodePool(args.encodeThreads);
    const bytes = await writeForecastStepFile(args.step, args.path, pool?.encodeFields);
    const sha256 = await sha256OfFile(args.path);
    // Once this handler has returned nothing references the frame; a GC inside it would keep it.
    setImmediate(collectGarbage);
    return { result: { ms: performance.now() - started, bytes, sha256 } };
  },
});
