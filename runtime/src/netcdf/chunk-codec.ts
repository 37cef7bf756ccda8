// What happens to one (lat, lon) field of a compressed step: optional bit-rounding, HDF5's byte
// shuffle, then deflate with Node's native zlib. Pure functions (the encode workers call them).
import { deflateRawSync, deflateSync } from "node:zlib";
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
 * float32 in, the byte planes out. When the planes start on 4-byte boundaries (n a multiple of 4), four
 * elements are done at a time, each plane getting one 32-bit word of four bytes: a quarter of the stores
 * of the byte loop, and 1.8× faster on a full-grid step (220 against 400 ms on one thread, 2026-12-02).
 */
export function shuffle32(field: Float32Array, out: Uint8Array): Uint8Array {
  const n = field.length;
  if (out.length < n * 4) throw new Error("shuffle32: output too small");
  const words = new Uint32Array(field.buffer, field.byteOffset, n);
  if (n % 4 === 0 && out.byteOffset % 4 === 0) {
    const q = n / 4;
    const planes = new Uint32Array(out.buffer, out.byteOffset, n);
    for (let j = 0, i = 0; j < q; j++, i += 4) {
      const a = words[i];
      const b = words[i + 1];
      const c = words[i + 2];
      const d = words[i + 3];
      planes[j] = (a & 0xff) | ((b & 0xff) << 8) | ((c & 0xff) << 16) | (d << 24);
      planes[q + j] = ((a >>> 8) & 0xff) | (b & 0xff00) | ((c & 0xff00) << 8) | ((d & 0xff00) << 16);
      planes[2 * q + j] = ((a >>> 16) & 0xff) | ((b >>> 8) & 0xff00) | (c & 0xff0000) | ((d & 0xff0000) << 8);
      planes[3 * q + j] = (a >>> 24) | ((b >>> 16) & 0xff00) | ((c >>> 8) & 0xff0000) | (d & 0xff000000);
    }
    return out.subarray(0, 4 * n);
  }
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
  return deflatePlanes(shuffle32(values, scratch.bytes), field.length);
}

/**
 * A low byte plane is stored when a deflate of its first PROBE_BYTES saves less than this fraction.
 * Deflate is slowest on the data it cannot shrink: on the bench's full-grid fields (2026-12-02),
 * plane 1's probes saved 1-15 % (median 4.5 %) and deflating that plane took 1.5 of a thread's
 * ~1.8 s per step for 7 % of it, while plane 2 (probes ~90 %) took 0.19 s. Storing what saves
 * under a fifth costs at most a fifth of a plane's bytes and keeps encode at compute speed.
 */
export const STORE_BELOW_SAVING = 0.2;
/** 16 KiB: tells noise (~0 %) from a compressible plane (~90 %) as well as 64 KiB did, in a quarter of the time. */
const PROBE_BYTES = 16 * 1024;
const ADLER_BASE = 65521;

/**
 * zlib stream of shuffled float32 planes (`n` bytes each). Byte plane 0 holds the lowest mantissa
 * byte, mostly noise in weather fields: deflating it took ~3/4 of a chunk's time for ~nothing. The
 * low planes (0, then 1, then 2) whose probe saves under STORE_BELOW_SAVING (20 %) are written as stored deflate blocks and
 * only the planes above them are deflated; the result is one ordinary zlib stream (any inflater,
 * HDF5's deflate filter included, reads it), with the Adler-32 of all four planes. When plane 0
 * compresses, the whole chunk is deflated as before.
 * Hand-written because zlib's API cannot switch a stream to stored blocks for a range synchronously.
 */
export function deflatePlanes(planes: Uint8Array, n: number): Buffer {
  const incompressible = (plane: number) => {
    const probe = planes.subarray(plane * n, plane * n + Math.min(PROBE_BYTES, n));
    return deflateRawSync(probe, { level: DEFLATE_LEVEL }).length >= probe.length * (1 - STORE_BELOW_SAVING);
  };
  let storedPlanes = 0;
  while (n > 0 && storedPlanes < 3 && incompressible(storedPlanes)) storedPlanes++;
  if (storedPlanes === 0) return deflateSync(planes, { level: DEFLATE_LEVEL });
  const lowest = planes.subarray(0, storedPlanes * n);
  const stored = storedBlocks(lowest);
  // zlib stream of the planes above: 2-byte header, raw deflate (ends with the final block), Adler-32 (big-endian).
  const rest = deflateSync(planes.subarray(lowest.length), { level: DEFLATE_LEVEL });
  const out = Buffer.allocUnsafe(2 + stored.blocks.length + rest.length - 2);
  out[0] = rest[0];
  out[1] = rest[1];
  out.set(stored.blocks, 2);
  out.set(rest.subarray(2, rest.length - 4), 2 + stored.blocks.length);
  out.writeUInt32BE(adler32Combine(stored.adler, rest.readUInt32BE(rest.length - 4), planes.length - lowest.length), out.length - 4);
  return out;
}

/**
 * `bytes` as non-final stored deflate blocks, and their Adler-32, both from zlib's level 0 (native:
 * about twice as fast as the same in JS). Level 0 writes byte-aligned stored blocks (RFC 1951 3.2.4:
 * a header byte BFINAL/BTYPE=00, LEN, NLEN, the bytes); they are checked one by one and the final
 * flag is cleared so the deflated planes can follow.
 */
function storedBlocks(bytes: Uint8Array): { blocks: Buffer; adler: number } {
  const stream = deflateSync(bytes, { level: 0 });
  const end = stream.length - 4;
  let last = -1;
  let at = 2;
  while (at < end) {
    const length = stream.readUInt16LE(at + 1);
    if ((stream[at] & ~1) !== 0 || (length ^ stream.readUInt16LE(at + 3)) !== 0xffff) break;
    last = at;
    at += 5 + length;
  }
  if (at !== end || last < 0 || stream[last] !== 1) throw new Error(`zlib level 0 did not write stored blocks as expected (at byte ${at} of ${stream.length})`);
  stream[last] = 0;
  return { blocks: stream.subarray(2, end), adler: stream.readUInt32BE(end) };
}

/** Adler-32 of A followed by B from adler(A), adler(B) and B's length (zlib's adler32_combine). */
export function adler32Combine(first: number, second: number, secondLength: number): number {
  const rem = secondLength % ADLER_BASE;
  let sum1 = first & 0xffff;
  let sum2 = (rem * sum1) % ADLER_BASE;
  sum1 += (second & 0xffff) + ADLER_BASE - 1;
  sum2 += ((first >>> 16) & 0xffff) + ((second >>> 16) & 0xffff) + ADLER_BASE - rem;
  if (sum1 >= ADLER_BASE) sum1 -= ADLER_BASE;
  if (sum1 >= ADLER_BASE) sum1 -= ADLER_BASE;
  if (sum2 >= 2 * ADLER_BASE) sum2 -= 2 * ADLER_BASE;
  if (sum2 >= ADLER_BASE) sum2 -= ADLER_BASE;
  return (sum2 * 65536 + sum1) >>> 0;
}
