import { randomUUID } from "node:crypto";

// h5wasm is ESM-only; tsc (module node16) keeps this a real dynamic import in CommonJS output.
export type H5 = typeof import("h5wasm/node", { with: { "resolution-mode": "import" } });

let loading: Promise<H5> | undefined;

/** Loads the h5wasm module once per thread (each worker_thread gets its own WASM instance). */
export function loadH5(): Promise<H5> {
  loading ??= (async () => {
    const h5 = await import("h5wasm/node");
    const module = await h5.ready;
    // HDF5 errors become JS exceptions (with HDF5's error stack as message) instead of stderr noise.
    module.activate_throwing_error_handler();
    return h5;
  })();
  return loading;
}

function memfs(h5: H5) {
  const fs = h5.FS;
  if (!fs) throw new Error("h5wasm FS is not available after ready");
  return fs;
}

function memPath(): string {
  return `/fuxi-${randomUUID()}.nc`;
}

/**
 * Opens `bytes` read-only through h5wasm's in-memory file system, runs `read`, then closes and unlinks.
 * The MEMFS node borrows `bytes` (canOwn) instead of copying it: HDF5 only reads it.
 */
export function withH5Reader<T>(h5: H5, bytes: Uint8Array, read: (file: InstanceType<H5["File"]>) => T): T {
  const fs = memfs(h5);
  const path = memPath();
  const stream = fs.open(path, "w+");
  try {
    fs.write(stream, bytes, 0, bytes.byteLength, 0, true);
  } finally {
    fs.close(stream);
  }
  try {
    const file = new h5.File(path, "r");
    try {
      return read(file);
    } finally {
      file.close();
    }
  } finally {
    fs.unlink(path);
  }
}

/**
 * Creates a new HDF5 file in MEMFS, runs `write`, closes it and returns its bytes.
 *
 * HDF5 stamps every object header with its modification time (track_times) and h5wasm exposes
 * no way to turn that off (H5Pset_obj_track_times is not exported from the WASM build). The WASM
 * C library reads the wall clock through Emscripten's clock_time_get -> Date.now(), so the clock
 * is pinned to the Unix epoch while HDF5 runs. The whole write is synchronous, so no other code
 * on this thread can observe the pinned clock.
 */
export function withH5Writer(h5: H5, write: (file: InstanceType<H5["File"]>) => void): Uint8Array {
  const fs = memfs(h5);
  const path = memPath();
  const realNow = Date.now;
  Date.now = () => 0;
  try {
    const file = new h5.File(path, "w", { track_order: true });
    try {
      write(file);
    } finally {
      file.close();
    }
    return fs.readFile(path, { encoding: "binary" });
  } finally {
    Date.now = realNow;
    try {
      fs.unlink(path);
    } catch {
      // the file was never created
    }
  }
}

/**
 * The useful part of an h5wasm error: HDF5 errors arrive as a whole error stack ("HDF5-DIAG: …
 * #000: … in H5Fopen(): unable to open file …"); the innermost entry says what actually went wrong.
 */
export function describeH5Error(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const entries = [...text.matchAll(/#\d+: .*? in [\w.]+\(\): (.*)$/gm)].map((m) => m[1].trim());
  const innermost = entries.at(-1);
  if (innermost === undefined) return text.split("\n").find((line) => /\S/.test(line))?.trim() ?? "unknown error";
  const truncated = /truncated file: eof = (\d+).*stored_eof = (\d+)/.exec(innermost);
  if (truncated) return `file is truncated (${truncated[1]} of ${truncated[2]} bytes present)`;
  return innermost;
}
