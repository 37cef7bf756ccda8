// Worker thread for NetCDF decoding and encoding: h5wasm is synchronous WASM and a full-grid
// file takes seconds, which must never block the main thread (SageMaker pings time out after 2 s).
import { serveRpc } from "./worker-rpc";
import { readFuxiInput, encodeForecastStep, readForecastStep, type ForecastStep } from "./netcdf";

function buffersOf(...arrays: ArrayBufferView[]): ArrayBuffer[] {
  const unique = new Set<ArrayBuffer>();
  for (const array of arrays) unique.add(array.buffer as ArrayBuffer);
  return [...unique];
}

serveRpc({
  async readInput(args: { bytes: Uint8Array; file: string; expected: { lat: number; lon: number } }) {
    const input = await readFuxiInput(args.bytes, args.file, args.expected);
    return { result: input, transfer: buffersOf(input.data, input.lat, input.lon) };
  },

  async readStep(args: { bytes: Uint8Array; file: string }) {
    const step = await readForecastStep(args.bytes, args.file);
    return { result: step, transfer: buffersOf(step.data, step.lat, step.lon) };
  },

  /** Encodes one step; the frame buffer goes back with the bytes so the caller can reuse it. */
  async encodeStep(args: { step: ForecastStep }) {
    const started = performance.now();
    const bytes = await encodeForecastStep(args.step);
    const ms = performance.now() - started;
    return { result: { bytes, frame: args.step.data, ms }, transfer: buffersOf(bytes, args.step.data) };
  },
});
