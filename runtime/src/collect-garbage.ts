// Frees dead ArrayBuffers now instead of whenever V8 next collects.
//
// Each step leaves the previous 581 MB window behind in the inference worker. V8 frees an
// ArrayBuffer's memory only when a GC finds it dead, and it schedules GCs by heap size, which such
// buffers barely move: the runtime was measured holding two to three dead windows. A full GC of the
// worker's small heap takes about 2 ms, so it runs one per step.
// `--expose-gc` is switched on here (as jest's leak detector does) so neither the image's entrypoint
// nor every test that starts the runtime needs the flag.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

export function collectGarbage(): void {
  gc();
}
