// What happens to one (lat, lon) field of a compressed step: optional bit-rounding, HDF5's byte
// shuffle, then deflate with Node's native zlib. Pure functions (the encode workers call them).
import { deflateSync } from "node:zlib";
import type { ChunkFilter } from "./hdf5-chunks";

/** zlib level: measured on the full grid, level 1 with shuffle is smaller than today's (pre-shuffle) files and fastest. */
export const DEFLATE_LEVEL = 1;
const FLOAT32_BYTES = 4;

/** The HDF5 filter pipeline these chunks need: shuffle (element size 4), then deflate. */
export const SHUFFLE_DEFLATE: ChunkFilter[] = [
  { id: 2, values: [FLOAT32_BYTES] },
  { id: 1, values: [DEFLATE_LEVEL] },
];

/**
 * HDF5's shuffle filter (H5Zshuffle.c): byte k of every element goes to plane k. Little-endian
 * float32 in, the byte planes out.
 */
export function shuffle32(field: Float32Array, out: Uint8Array): Uint8Array {
  const n = field.length;
  if (out.length < n * 4) throw new Error("shuffle32: output too small");
  const words = new Uint32Array(field.buffer, field.byteOffset, n);
  const p0 = out.subarray(0, n);
  const p1 = out.subarray(n, 2 * n);
  const p2 = out.subarray(2 * n, 3 * n);
  const p3 = out.subarray(3 * n, 4 * n);
  for (let i = 0; i < n; i++) {
    const w = words[i];
    p0[i] = w;
    p1[i] = w >>> 8;
    p2[i] = w >>> 16;
    p3[i] = w >>> 24;
  }
  return out.subarray(0, 4 * n);
}

/**
 * Bit-rounding (Klöwer et al. 2021; netCDF-C 4.9's BitRound quantize): keeps `bits` explicit
 * mantissa bits of each float32, rounding to nearest (ties to even), so |x − x̂| ≤ 2^−(bits+1)·|x|.
 * (The relative bound is for normal floats; subnormals, below 2^-126, get the same bound relative to
 * 2^-126.) NaN and ±Inf pass unchanged, and so does a value within half a unit of the largest float,
 * which would round to ±Inf. Writes into `out`.
 */
export function bitround32(field: Float32Array, bits: number, out: Float32Array): Float32Array {
  if (!Number.isInteger(bits) || bits < 1 || bits > 23) throw new Error(`bitround: ${bits} mantissa bits; expected 1 … 23`);
  const source = new Uint32Array(field.buffer, field.byteOffset, field.length);
  const target = new Uint32Array(out.buffer, out.byteOffset, field.length);
  const drop = 23 - bits;
  if (drop === 0) {
    target.set(source);
    return out;
  }
  const keepMask = (0xffffffff << drop) >>> 0;
  const half = 1 << (drop - 1);
  const halfMinusOne = half - 1;
  for (let i = 0; i < source.length; i++) {
    const w = source[i];
    if ((w & 0x7f800000) === 0x7f800000) {
      target[i] = w; // NaN, Inf
      continue;
    }
    // Round half to even: add half - 1 plus the lowest kept bit, then truncate.
    const lowestKept = (w >>> drop) & 1;
    const rounded = ((w + halfMinusOne + lowestKept) & keepMask) >>> 0;
    target[i] = (rounded & 0x7f800000) === 0x7f800000 ? w : rounded;
  }
  return out;
}

export interface FieldEncoding {
  /** Mantissa bits to keep; undefined = lossless. */
  bitroundBits?: number;
}

/** One field → one compressed chunk (bitround if asked, shuffle, deflate). `scratch` is reused between calls. */
export function encodeField(field: Float32Array, encoding: FieldEncoding, scratch: { floats?: Float32Array; bytes?: Uint8Array } = {}): Buffer {
  let values = field;
  if (encoding.bitroundBits !== undefined) {
    if (!scratch.floats || scratch.floats.length < field.length) scratch.floats = new Float32Array(field.length);
    values = bitround32(field, encoding.bitroundBits, scratch.floats.subarray(0, field.length));
  }
  if (!scratch.bytes || scratch.bytes.length < field.length * 4) scratch.bytes = new Uint8Array(field.length * 4);
  return deflateSync(shuffle32(values, scratch.bytes), { level: DEFLATE_LEVEL });
}
