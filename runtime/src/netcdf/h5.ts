import { randomUUID } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

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

/**
 * h5wasm's Node build runs on Emscripten's NODERAWFS: its paths are real files on the local disk, not
 * an in-memory file system. The runtime passes paths in its FUXI_SCRATCH_DIR (which the image's
 * non-root user can write); the bytes-in/bytes-out helpers below (tests, tools, small files) use a
 * temporary file in the OS temp directory.
 */
function temporaryPath(): string {
  return join(tmpdir(), `fuxi-${randomUUID()}.nc`);
}

/** Opens the HDF5 file at `path` read-only, runs `read`, closes it. */
export function withH5File<T>(h5: H5, path: string, read: (file: InstanceType<H5["File"]>) => T): T {
  const file = new h5.File(path, "r");
  try {
    return read(file);
  } finally {
    file.close();
  }
}

/** Writes `bytes` to a temporary file, opens it read-only, runs `read`, then closes and deletes it. */
export function withH5Reader<T>(h5: H5, bytes: Uint8Array, read: (file: InstanceType<H5["File"]>) => T): T {
  const path = temporaryPath();
  writeFileSync(path, bytes);
  try {
    return withH5File(h5, path, read);
  } finally {
    rmSync(path, { force: true });
  }
}

/**
 * Creates the HDF5 file `path` (replacing it), runs `write` and closes it.
 *
 * HDF5 stamps every object header with its modification time (track_times) and h5wasm exposes
 * no way to turn that off (H5Pset_obj_track_times is not exported from the WASM build). The WASM
 * C library reads the wall clock through Emscripten's clock_time_get -> Date.now(), so the clock
 * is pinned to the Unix epoch while HDF5 runs. The whole write is synchronous, so no other code
 * on this thread can observe the pinned clock.
 */
export function writeH5File(h5: H5, path: string, write: (file: InstanceType<H5["File"]>) => void): void {
  const realNow = Date.now;
  Date.now = () => 0;
  try {
    const file = new h5.File(path, "w", { track_order: true });
    try {
      write(file);
    } finally {
      file.close();
    }
  } catch (error) {
    rmSync(path, { force: true });
    throw error;
  } finally {
    Date.now = realNow;
  }
}

/** Like writeH5File, into a temporary file whose bytes are returned (tests, tools; small files). */
export function withH5Writer(h5: H5, write: (file: InstanceType<H5["File"]>) => void): Uint8Array {
  const path = temporaryPath();
  try {
    writeH5File(h5, path, write);
    return new Uint8Array(readFileSync(path));
  } finally {
    rmSync(path, { force: true });
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
