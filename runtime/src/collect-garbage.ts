// Frees dead ArrayBuffers now instead of whenever V8 next collects.
//
// A step leaves 290-581 MB buffers behind (the previous window; h5wasm's copies of a step's slices).
// V8 frees an ArrayBuffer's memory only when a GC finds it dead, and it schedules GCs by heap size,
// which these buffers barely touch: the runtime was measured holding two to three dead windows per
// thread. A full GC of a worker's small heap takes about 2 ms, so the workers run one per step.
// `--expose-gc` is switched on here (as jest's leak detector does) so neither the image's entrypoint
// nor every test that starts the runtime needs the flag.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

export function collectGarbage(): void {
  gc();
}
