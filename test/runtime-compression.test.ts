// Compressed step files: shuffle + deflate chunks written directly into the HDF5 file, bitround with
// its exact error bound, and the real readers (ncdump, h5dump, xarray) on the result.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { deflateSync, inflateSync } from "node:zlib";
import { CHANNEL_NAMES, FORECAST_VARIABLE, encodeForecastStep, readForecastStep, type ForecastStep } from "../runtime/src/netcdf";
import { bitround32, deflatePlanes, shuffle32, STORE_BELOW_SAVING } from "../runtime/src/netcdf/chunk-codec";
import { BITROUND_ATTRIBUTE, BITROUND_PER_LEVEL_ATTRIBUTE } from "../runtime/src/netcdf/forecast-step";
import { lookup3 } from "../runtime/src/netcdf/hdf5-chunks";
import { loadH5 } from "../runtime/src/netcdf/h5";
import { writeNetcdf4 } from "../runtime/src/netcdf/nc4-write";
import { EncodePool } from "../runtime/src/encode-pool";
import { fuxiGrid, syntheticFuxiInput } from "../tools/fuxi-input-file";

const run = promisify(execFile);
const GRID = { lat: 33, lon: 64 };
const INIT = new Date("2023-10-12T06:00:00Z");
const CELLS = GRID.lat * GRID.lon;

function step(overrides: Partial<ForecastStep> = {}, grid = GRID): ForecastStep {
  const { lat, lon } = fuxiGrid(grid);
  const data = syntheticFuxiInput({ initTime: INIT, ...grid }).slice(70 * grid.lat * grid.lon);
  return { initTime: INIT, leadHours: 6, levels: [...CHANNEL_NAMES], lat, lon, data, compression: "gzip", ...overrides };
}

/** xorshift float32 bit patterns over every exponent, both signs, subnormals; NaN/Inf excluded. */
function randomFloats(n: number, seed = 0x9e3779b9): Float32Array {
  const bits = new Uint32Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bits[i] = x >>> 0;
    if ((bits[i] & 0x7f800000) === 0x7f800000) bits[i] &= 0xbfffffff;
  }
  return new Float32Array(bits.buffer);
}

describe("runtime: compressed step files", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "fuxi-compress-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("lookup3 reproduces the checksums HDF5 itself wrote (superblock and object headers)", async () => {
    const bytes = await encodeForecastStep(step({ compression: "none" }));
    const file = Buffer.from(bytes);
    assert.equal(lookup3(file.subarray(0, 44)), file.readUInt32LE(44), "superblock checksum");
    const root = Number(file.readBigUInt64LE(36));
    assert.equal(file.toString("latin1", root, root + 4), "OHDR");
    const flags = file[root + 5];
    const sizeAt = root + 6 + (flags & 0x20 ? 16 : 0) + (flags & 0x10 ? 4 : 0);
    const chunk0 = file.readUIntLE(sizeAt, 1 << (flags & 3));
    const end = sizeAt + (1 << (flags & 3)) + chunk0;
    assert.equal(lookup3(file.subarray(root, end)), file.readUInt32LE(end), "root object header checksum");
  });

  it("shuffle32 is HDF5's byte shuffle: byte k of element i goes to k·n + i (word-wide and byte-wise paths)", () => {
    // 1000 and 1004: four elements at a time; 1001: the byte loop; a misaligned output: the byte loop.
    for (const [n, outOffset] of [[1000, 0], [1004, 0], [1001, 0], [1000, 1]]) {
      const values = randomFloats(n);
      values[0] = -0; // the sign bit (bit 31) must survive the word-wide path
      const bytes = new Uint8Array(values.buffer);
      const out = shuffle32(values, new Uint8Array(4 * n + outOffset).subarray(outOffset));
      for (let i = 0; i < n; i++) for (let k = 0; k < 4; k++) assert.equal(out[k * n + i], bytes[4 * i + k], `n ${n}, element ${i}, byte ${k}`);
    }
  });

  it("bitround keeps the exact bound |x − x̂| ≤ 2^−(bits+1)·|x| for every bit count, rounds to nearest (ties to even) and is idempotent", () => {
    const values = randomFloats(20_000);
    values.set([0, -0, 1, -1, 1.4e-45, 3.4e38, 1.5, 1.25, 1.75, 2.5], 0);
    const out = new Float32Array(values.length);
    const again = new Float32Array(values.length);
    for (let bits = 1; bits <= 23; bits++) {
      bitround32(values, bits, out);
      const ulp = 2 ** -bits;
      for (let i = 0; i < values.length; i++) {
        const x = values[i];
        const y = out[i];
        // In float64 the bound and the difference are exact for float32 operands.
        // Normal floats: relative bound. Subnormals carry fewer significant bits, so their bound is
        // absolute, relative to the smallest normal (2^-126); physical fields never get there.
        const scale = Math.abs(x) >= 2 ** -126 ? Math.abs(x) : 2 ** -126;
        assert.ok(Math.abs(x - y) <= 2 ** -(bits + 1) * scale, `bits ${bits}: ${x} → ${y}`);
        assert.ok(Object.is(Math.sign(x), Math.sign(y)) || y === 0 || x === 0, `bits ${bits}: sign of ${x} → ${y}`);
        // Nearest: no representable value with `bits` mantissa bits is closer (checked against both neighbours).
        if (Math.abs(x) >= 2 ** -126 && Number.isFinite(y) && y !== 0) {
          const exponent = Math.floor(Math.log2(Math.abs(y)));
          const step = 2 ** exponent * ulp;
          assert.ok(Math.abs(x - y) <= step / 2 + 1e-300, `bits ${bits}: ${x} → ${y} is not the nearest`);
        }
      }
      bitround32(out, bits, again);
      assert.deepEqual(new Uint32Array(again.buffer), new Uint32Array(out.buffer), `bits ${bits}: not idempotent`);
    }
    // Ties go to the even mantissa: with 1 bit, 1.25 (between 1 and 1.5) → 1, 1.75 → 2.
    bitround32(Float32Array.of(1.25, 1.75, -1.25, 2.5), 1, out);
    assert.deepEqual(Array.from(out.subarray(0, 4)), [1, 2, -1, 2]);
    const special = bitround32(Float32Array.of(NaN, Infinity, -Infinity), 4, new Float32Array(3));
    assert.ok(Number.isNaN(special[0]));
    assert.equal(special[1], Infinity);
    assert.equal(special[2], -Infinity);
    assert.throws(() => bitround32(values, 0, out), /1 … 23/);
  });

  it("gzip: shuffle + deflate per (lat, lon) chunk, bit-exact, read by ncdump, smaller than h5wasm's own deflate", async () => {
    const original = step();
    const bytes = await encodeForecastStep(original);
    const back = await readForecastStep(bytes, "006.nc");
    assert.equal(back.compression, "gzip");
    assert.ok(Buffer.from(back.data.buffer).equals(Buffer.from(original.data.buffer)), "values differ after the round trip");
    const path = join(dir, "gzip.nc");
    await writeFile(path, bytes);
    const { stdout } = await run("ncdump", ["-hs", path]);
    assert.match(stdout, new RegExp(`${FORECAST_VARIABLE}:_ChunkSizes = 1, 1, 1, ${GRID.lat}, ${GRID.lon} ;`));
    assert.match(stdout, new RegExp(`${FORECAST_VARIABLE}:_Shuffle = "true" ;`));
    assert.match(stdout, new RegExp(`${FORECAST_VARIABLE}:_DeflateLevel = 1 ;`));
    // ncdump decodes every chunk: its values equal ours (printed with full float precision).
    const { stdout: data } = await run("ncdump", ["-p", "9", "-v", FORECAST_VARIABLE, path], { maxBuffer: 64 * 1024 * 1024 });
    const printed = /__xarray_dataarray_variable__ =([\s\S]*?);/.exec(data.slice(data.indexOf("data:")))![1].split(/[,\s]+/).filter(Boolean).map(Number);
    assert.equal(printed.length, original.data.length);
    for (let i = 0; i < printed.length; i += 97) assert.equal(Math.fround(printed[i]), original.data[i]);

    // The same variable as h5wasm deflates it (level 1, no shuffle): the old encoder. On a 1° grid of
    // the synthetic fields (on 721×1440: 62.2 MB against 89.2 MB; on 33×64 neighbours differ too
    // much for shuffle to pay: +6 %).
    const grid = { lat: 181, lon: 360 };
    const larger = step({}, grid);
    const h5 = await loadH5();
    const old = writeNetcdf4(h5, {
      coordinates: [{ name: "level", values: [...CHANNEL_NAMES] }, { name: "lat", values: larger.lat }, { name: "lon", values: larger.lon }],
      variables: [{ name: "v", dims: ["level", "lat", "lon"], data: larger.data, chunks: [1, grid.lat, grid.lon], deflateLevel: 1 }],
    });
    const ours = await encodeForecastStep(larger);
    assert.ok(ours.byteLength < old.byteLength * 0.7, `shuffle + deflate ${ours.byteLength} B is not 30 % smaller than h5wasm's deflate ${old.byteLength} B`);
  });

  it("stores the noise byte plane uncompressed in one valid zlib stream, and deflates compressible planes as before", async () => {
    const n = 3 * 65535 + 17; // several stored blocks and a partial one
    const noisy = shuffle32(randomFloats(n), new Uint8Array(4 * n));
    const stored = deflatePlanes(noisy, n);
    assert.ok(inflateSync(stored).equals(Buffer.from(noisy)), "inflate (which checks the Adler-32) gives the planes back");
    const plain = deflateSync(noisy, { level: 1 });
    assert.ok(stored.length <= plain.length * 1.01, `stored ${stored.length} B vs deflated ${plain.length} B`);
    const smooth = shuffle32(step().data.subarray(0, CELLS), new Uint8Array(4 * CELLS));
    assert.ok(deflatePlanes(smooth, CELLS).equals(deflateSync(smooth, { level: 1 })), "a compressible lowest plane is deflated with the rest");
    // Through HDF5's own deflate filter (h5wasm's reader), bit-exact.
    const noisyStep = step({ data: randomFloats(70 * CELLS) });
    const back = await readForecastStep(await encodeForecastStep(noisyStep), "006.nc");
    assert.ok(Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength).equals(Buffer.from(noisyStep.data.buffer)), "values differ after the round trip");
  });

  it(`stores each low plane whose probe saves under ${STORE_BELOW_SAVING * 100} % and deflates the planes from the first one that saves more`, () => {
    const n = 2 * 65535 + 5;
    const random = new Uint8Array(randomFloats(n).buffer);
    const planes = new Uint8Array(4 * n);
    for (let i = 0; i < n; i++) {
      planes[i] = random[4 * i]; // noise: saves ~0 %
      planes[n + i] = random[4 * i + 1] & 0x7f; // 7 of 8 bits: saves ~12 %, under the threshold
      planes[2 * n + i] = random[4 * i + 2] & 0x0f; // 4 of 8 bits: saves ~45 %
      planes[3 * n + i] = 0x42;
    }
    const out = deflatePlanes(planes, n);
    assert.ok(inflateSync(out).equals(Buffer.from(planes)), "inflate (which checks the Adler-32) gives the planes back");
    const deflatedRest = deflateSync(planes.subarray(2 * n), { level: 1 }).subarray(2, -4);
    const storedBytes = out.length - 2 - deflatedRest.length - 4;
    assert.ok(out.subarray(2 + storedBytes, out.length - 4).equals(deflatedRest), "planes 2 and 3 are deflated together, after the stored blocks");
    const blocks = (storedBytes - 2 * n) / 5; // each stored block adds 5 header bytes
    assert.ok(Number.isInteger(blocks) && blocks >= Math.ceil((2 * n) / 65535), `planes 0 and 1 are stored: ${storedBytes} B before the deflated planes for ${2 * n} B of planes`);
  });

  it("gzip through the worker-thread pool gives the same bytes as on one thread", async function () {
    this.timeout(60_000);
    const shared = step();
    const data = new Float32Array(new SharedArrayBuffer(shared.data.byteLength));
    data.set(shared.data);
    const pool = new EncodePool(3);
    try {
      const pooled = await encodeForecastStep({ ...shared, data }, pool.encodeFields);
      const here = await encodeForecastStep(shared);
      assert.ok(Buffer.from(pooled).equals(Buffer.from(here)), "pooled and single-thread encodings differ");
      // A frame in ordinary memory (what the runtime transfers to the codec worker) is copied to the threads a batch at a time.
      const copied = await encodeForecastStep({ ...shared, data: shared.data.slice() }, pool.encodeFields);
      assert.ok(Buffer.from(copied).equals(Buffer.from(here)), "pooled encoding of unshared data differs");
    } finally {
      await pool.close();
    }
  });

  it("bitround: the quantize attribute, the per-level bits, the bound on every value, and xarray reads it", async function () {
    this.timeout(60_000);
    const bits = CHANNEL_NAMES.map((_, i) => 4 + (i % 9));
    const original = step({ compression: "bitround", bitroundBits: bits, leadHours: 126 });
    const bytes = await encodeForecastStep(original);
    const gzip = await encodeForecastStep(step({ leadHours: 126 }));
    assert.ok(bytes.byteLength < gzip.byteLength, `bitround ${bytes.byteLength} B is not smaller than gzip ${gzip.byteLength} B`);
    const back = await readForecastStep(bytes, "126.nc");
    assert.equal(back.compression, "bitround");
    assert.deepEqual(back.bitroundBits, bits);
    for (let level = 0; level < 70; level++) {
      for (let i = level * CELLS; i < (level + 1) * CELLS; i++) {
        const x = original.data[i];
        assert.ok(Math.abs(x - back.data[i]) <= 2 ** -(bits[level] + 1) * Math.abs(x), `level ${level}: ${x} → ${back.data[i]}`);
      }
    }
    const path = join(dir, "126.nc");
    await writeFile(path, bytes);
    await writeFile(join(dir, "expected.bin"), original.data);
    await writeFile(join(dir, "bits.json"), JSON.stringify(bits));
    const { stdout } = await run("ncdump", ["-hs", path]);
    assert.match(stdout, new RegExp(`${FORECAST_VARIABLE}:${BITROUND_ATTRIBUTE} = 4 ;`));
    assert.match(stdout, new RegExp(`${FORECAST_VARIABLE}:${BITROUND_PER_LEVEL_ATTRIBUTE} = 4, 5, 6,`));
    const script = `
import json, sys, numpy as np, xarray as xr
d = sys.argv[1]
da = xr.open_dataarray(d + "/126.nc")
x = np.fromfile(d + "/expected.bin", dtype="<f4").reshape(70, -1).astype(np.float64)
y = da.values.reshape(70, -1).astype(np.float64)
bits = np.array(json.load(open(d + "/bits.json")), dtype=np.float64)[:, None]
print(json.dumps({
  "within": bool(np.all(np.abs(x - y) <= 2.0 ** -(bits + 1) * np.abs(x))),
  "step": int(da.step.values[0]),  # plain integer hours, as the original writes
  "nsb": int(da.attrs["${BITROUND_ATTRIBUTE}"]),
  "shuffle": bool(da.encoding.get("shuffle")), "zlib": bool(da.encoding.get("zlib")),
}))
`;
    const got = JSON.parse((await run("/usr/bin/python3", ["-c", script, dir])).stdout);
    assert.deepEqual(got, { within: true, step: 126, nsb: 4, shuffle: true, zlib: true });
  });

  it("rejects bitround without one valid bit count per level", async () => {
    await assert.rejects(encodeForecastStep(step({ compression: "bitround" })), /bitround needs 70 mantissa bit counts/);
    await assert.rejects(encodeForecastStep(step({ compression: "bitround", bitroundBits: CHANNEL_NAMES.map(() => 24) })), /from 1 to 23/);
  });

  it("h5dump (the HDF Group's own reader) reads the directly written chunks, compressed and not", async () => {
    const bytes = await encodeForecastStep(step());
    const path = join(dir, "h5dump.nc");
    await writeFile(path, bytes);
    const { stdout } = await run("h5dump", ["-p", "-H", "-d", FORECAST_VARIABLE, path]);
    assert.match(stdout, /SHUFFLE/);
    assert.match(stdout, /DEFLATE \{ LEVEL 1 \}/);
    await run("h5dump", ["-d", FORECAST_VARIABLE, "-o", join(dir, "dump.txt"), path], { maxBuffer: 64 * 1024 * 1024 });
    assert.ok((await readFile(join(dir, "dump.txt"), "utf8")).length > 0);
    // Uncompressed: raw chunks, the reserved pipeline message turned into a NULL message.
    const plainPath = join(dir, "h5dump-none.nc");
    await writeFile(plainPath, await encodeForecastStep(step({ compression: "none" })));
    const plain = await run("h5dump", ["-p", "-H", "-d", FORECAST_VARIABLE, plainPath]);
    assert.match(plain.stdout, /FILTERS \{\s+NONE\s+\}/);
    assert.match(plain.stdout, /CHUNKED \( 1, 1, 1, 33, 64 \)/);
    await run("h5dump", ["-d", FORECAST_VARIABLE, "-o", join(dir, "dump-none.txt"), plainPath], { maxBuffer: 64 * 1024 * 1024 });
    assert.ok((await readFile(join(dir, "dump-none.txt"), "utf8")).length > 0);
  });
});
