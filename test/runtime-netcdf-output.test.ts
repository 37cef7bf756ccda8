import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CHANNEL_NAMES, FORECAST_VARIABLE, encodeForecastStep, readForecastStep, type ForecastStep } from "../runtime/src/netcdf";
import { loadH5 } from "../runtime/src/netcdf/h5";
import { writeNetcdf4 } from "../runtime/src/netcdf/nc4-write";
import { fuxiGrid, syntheticFuxiInput } from "../tools/fuxi-input-file";

const run = promisify(execFile);
const GRID = { lat: 32, lon: 64 };
const INIT = new Date("2023-10-12T06:00:00Z");
const FIELD = 70 * GRID.lat * GRID.lon;

function step(overrides: Partial<ForecastStep> = {}): ForecastStep {
  const { lat, lon } = fuxiGrid(GRID);
  // The second synthetic frame: smooth physical fields, like a real forecast.
  const data = syntheticFuxiInput({ initTime: INIT, ...GRID }).slice(FIELD);
  return { initTime: INIT, leadHours: 6, levels: [...CHANNEL_NAMES], lat, lon, data, compression: "none", ...overrides };
}

/** Float32 values with arbitrary bit patterns (all finite), to prove the round trip is bit-exact. */
function awkwardValues(): Float32Array {
  const bits = new Uint32Array(FIELD);
  let x = 0x12345678;
  for (let i = 0; i < bits.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bits[i] = x >>> 0;
    if ((bits[i] & 0x7f800000) === 0x7f800000) bits[i] &= 0xbfffffff; // no NaN/Inf
  }
  const values = new Float32Array(bits.buffer);
  values[0] = -0;
  values[1] = 1.4e-45; // smallest subnormal
  values[2] = 3.4028234663852886e38;
  return values;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

describe("runtime netcdf: forecast step files", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "fuxi-step-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const compression of ["none", "gzip"] as const) {
    it(`round-trips bit-exactly (${compression})`, async () => {
      const original = step({ data: awkwardValues(), compression, leadHours: 360 });
      const bytes = await encodeForecastStep(original);
      const back = await readForecastStep(bytes, "360.nc");
      assert.equal(back.initTime.toISOString(), INIT.toISOString());
      assert.equal(back.leadHours, 360);
      assert.equal(back.compression, compression);
      assert.deepEqual(back.levels, CHANNEL_NAMES);
      assert.deepEqual(back.lat, original.lat);
      assert.deepEqual(back.lon, original.lon);
      assert.ok(sameBits(back.data, original.data));
    });
  }

  it("returns bytes on their own ArrayBuffer, so they can be transferred between threads", async () => {
    const bytes = await encodeForecastStep(step());
    assert.equal(bytes.byteOffset, 0);
    assert.equal(bytes.buffer.byteLength, bytes.byteLength);
  });

  it("is byte-deterministic: same step, different wall-clock seconds, other encodes in between", async function () {
    this.timeout(30_000);
    const first = await encodeForecastStep(step());
    await encodeForecastStep(step({ leadHours: 12, data: awkwardValues(), compression: "gzip" }));
    await new Promise((resolve) => setTimeout(resolve, 1100)); // HDF5 object times have 1 s resolution
    const second = await encodeForecastStep(step());
    assert.ok(Buffer.from(first).equals(Buffer.from(second)), "the two encodings differ");
    const gzipA = await encodeForecastStep(step({ compression: "gzip" }));
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const gzipB = await encodeForecastStep(step({ compression: "gzip" }));
    assert.ok(Buffer.from(gzipA).equals(Buffer.from(gzipB)), "the two gzip encodings differ");
  });

  it("pins the clock only while HDF5 writes, and restores it when a write fails", async () => {
    const realNow = Date.now;
    await encodeForecastStep(step());
    assert.equal(Date.now, realNow);
    const h5 = await loadH5();
    const broken = { coordinates: [{ name: "x", values: Float64Array.of(1, 2, 3) }], variables: [{ name: "v", dims: ["x"], data: new Float32Array(2) }] };
    assert.throws(() => writeNetcdf4(h5, broken), /does not match number of elements/);
    assert.equal(Date.now, realNow);
    assert.ok(Math.abs(Date.now() - performance.timeOrigin - performance.now()) < 1000);
  });

  it("gzip: one (lat, lon) field per chunk, deflate, smaller than uncompressed", async () => {
    const plain = await encodeForecastStep(step());
    const gzip = await encodeForecastStep(step({ compression: "gzip" }));
    assert.ok(gzip.byteLength < plain.byteLength * 0.9, `gzip ${gzip.byteLength} vs ${plain.byteLength}`);
    await writeFile(join(dir, "gzip.nc"), gzip);
    const { stdout } = await run("ncdump", ["-hs", join(dir, "gzip.nc")]);
    assert.match(stdout, new RegExp(`${FORECAST_VARIABLE}:_ChunkSizes = 1, 1, 1, 32, 64 ;`));
    assert.match(stdout, new RegExp(`${FORECAST_VARIABLE}:_DeflateLevel = \\d ;`));
  });

  it("none: the fields' bytes are the chunks, with no filter pipeline (ncdump -hs); read back exactly; the same step gives the same bytes", async () => {
    const plain = await encodeForecastStep(step());
    assert.deepEqual(await encodeForecastStep(step()), plain);
    await writeFile(join(dir, "none.nc"), plain);
    const { stdout } = await run("ncdump", ["-hs", join(dir, "none.nc")]);
    assert.match(stdout, new RegExp(`${FORECAST_VARIABLE}:_ChunkSizes = 1, 1, 1, 32, 64 ;`));
    assert.match(stdout, new RegExp(`${FORECAST_VARIABLE}:_Storage = "chunked" ;`));
    assert.doesNotMatch(stdout, /_DeflateLevel|_Shuffle|_Filter/);
    // Values through xarray: "xarray.open_dataarray reads … exact values (none)" below.
    const back = await readForecastStep(plain, "none.nc");
    assert.equal(back.compression, "none");
    assert.deepEqual(back.data, step().data);
  });

  it("writes a variable chunked by trailing fields one chunk at a time, over several leading axes (ncdump reads every value)", async () => {
    const h5 = await loadH5();
    const data = Float32Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => i + 0.5);
    const coordinate = (name: string, n: number) => ({ name, values: Float64Array.from({ length: n }, (_, i) => i) });
    const bytes = writeNetcdf4(h5, {
      coordinates: [coordinate("a", 2), coordinate("b", 3), coordinate("y", 4), coordinate("x", 5)],
      variables: [{ name: "v", dims: ["a", "b", "y", "x"], data, chunks: [1, 1, 4, 5] }],
    });
    await writeFile(join(dir, "fields.nc"), bytes);
    const { stdout } = await run("ncdump", ["-s", "-v", "v", join(dir, "fields.nc")]);
    assert.match(stdout, /v:_ChunkSizes = 1, 1, 4, 5 ;/);
    assert.match(stdout, /float v\(a, b, y, x\) ;/);
    const values = /v =([\s\S]*?);/.exec(stdout.slice(stdout.indexOf("data:")))![1].split(/[,\s]+/).filter(Boolean).map(Number);
    assert.deepEqual(values, Array.from(data));
  });

  it("encodes a step without growing the WASM heap by the step's size (its chunks are written directly)", async () => {
    const heapBytes = async () => ((await loadH5()) as unknown as { Module: { HEAPU8: Uint8Array } }).Module.HEAPU8.length;
    const grid = { lat: 361, lon: 720 }; // 72.8 MB per step, several times the heap h5wasm starts with
    const { lat, lon } = fuxiGrid(grid);
    const data = new Float32Array(70 * grid.lat * grid.lon).fill(273.15);
    const before = await heapBytes();
    const bytes = await encodeForecastStep({ initTime: INIT, leadHours: 6, levels: [...CHANNEL_NAMES], lat, lon, data, compression: "none" });
    assert.ok(bytes.byteLength > data.byteLength);
    const grown = (await heapBytes()) - before;
    assert.ok(grown < 8 * 1024 * 1024, `the WASM heap grew by ${grown} bytes for a ${data.byteLength}-byte step`);
  });

  it("ncdump -h shows the contract's dimensions, variables and CF attributes", async () => {
    await writeFile(join(dir, "006.nc"), await encodeForecastStep(step()));
    const { stdout } = await run("ncdump", ["-h", join(dir, "006.nc")]);
    const dims = /dimensions:\n([\s\S]*?)variables:/.exec(stdout)?.[1].trim().split("\n").map((l) => l.trim());
    assert.deepEqual(dims, ["time = 1 ;", "step = 1 ;", "level = 70 ;", "lat = 32 ;", "lon = 64 ;"]);
    for (const line of [
      `float ${FORECAST_VARIABLE}(time, step, level, lat, lon) ;`,
      "int64 time(time) ;",
      'time:units = "hours since 1970-01-01 00:00:00" ;',
      'time:calendar = "proleptic_gregorian" ;',
      "int64 step(step) ;",
      "string level(level) ;",
      "double lat(lat) ;",
      'lat:units = "degrees_north" ;',
      'lat:standard_name = "latitude" ;',
      "double lon(lon) ;",
      'lon:units = "degrees_east" ;',
      'lon:standard_name = "longitude" ;',
    ]) {
      assert.ok(stdout.includes(line), `missing '${line}' in\n${stdout}`);
    }
    assert.ok(!/step:units/.test(stdout), "step has no units attribute (xarray would decode a timedelta)");
  });

  for (const compression of ["none", "gzip"] as const) {
    it(`xarray.open_dataarray reads dims, decoded time/step, coordinates and exact values (${compression})`, async function () {
      this.timeout(60_000);
      const original = step({ leadHours: 126, compression, data: awkwardValues() });
      await writeFile(join(dir, "126.nc"), await encodeForecastStep(original));
      await writeFile(join(dir, "expected.bin"), original.data);
      const script = `
import json, sys, numpy as np, xarray as xr
d = sys.argv[1]
da = xr.open_dataarray(d + "/126.nc")
expected = np.fromfile(d + "/expected.bin", dtype="<f4").reshape(1, 1, 70, ${GRID.lat}, ${GRID.lon})
values = da.values
print(json.dumps({
  "dims": list(da.dims), "shape": list(da.shape), "dtype": str(da.dtype),
  "time": str(da.time.values[0]), "time_dtype": str(da.time.dtype),
  "step": int(da.step.values[0]), "step_dtype": str(da.step.dtype),
  "levels": [str(x) for x in da.level.values], "lat": da.lat.values.tolist(), "lon": da.lon.values.tolist(),
  "bits_equal": bool(np.array_equal(values.view(np.uint32), expected.view(np.uint32))),
  "zlib": bool(da.encoding.get("zlib", False)),
}))
`;
      const { stdout } = await run("/usr/bin/python3", ["-c", script, dir]);
      const got = JSON.parse(stdout);
      assert.deepEqual(got.dims, ["time", "step", "level", "lat", "lon"]);
      assert.deepEqual(got.shape, [1, 1, 70, GRID.lat, GRID.lon]);
      assert.equal(got.dtype, "float32");
      assert.equal(got.time, "2023-10-12T06:00:00.000000000");
      assert.equal(got.time_dtype, "datetime64[ns]");
      assert.equal(got.step_dtype, "int64");
      assert.equal(got.step, 126);
      assert.deepEqual(got.levels, CHANNEL_NAMES);
      assert.deepEqual(got.lat, Array.from(original.lat));
      assert.deepEqual(got.lon, Array.from(original.lon));
      assert.equal(got.bits_equal, true);
      assert.equal(got.zlib, compression === "gzip");
    });
  }

  for (const compression of ["none", "gzip"] as const) {
    it(`is drop-in for the original tooling's files: xarray sees the same dims, coordinates, dtypes and values, and sel(step=lead) works on both (${compression})`, async function () {
      this.timeout(60_000);
      const lead = 126;
      const original = step({ leadHours: lead, compression, data: awkwardValues() });
      await writeFile(join(dir, "ours.nc"), await encodeForecastStep(original));
      await writeFile(join(dir, "frame.bin"), original.data);
      await writeFile(join(dir, "grid.json"), JSON.stringify({ lat: Array.from(original.lat), lon: Array.from(original.lon), levels: original.levels }));
      // What tpys/FuXi util.save_like writes: xr.DataArray(output[None], dims=[time, step, level, lat, lon],
      // coords=dict(time=[init_time], step=[step], level=input.level, lat=..., lon=...)).astype(np.float32).to_netcdf(name)
      const script = `
import json, sys, numpy as np, pandas as pd, xarray as xr
d, lead = sys.argv[1], int(sys.argv[2])
g = json.load(open(d + "/grid.json"))
output = np.fromfile(d + "/frame.bin", dtype="<f4").reshape(1, 70, len(g["lat"]), len(g["lon"]))
level = xr.DataArray(np.array(g["levels"], dtype=object), dims=["level"], name="level")
xr.DataArray(output[None], dims=["time", "step", "level", "lat", "lon"],
             coords=dict(time=[pd.to_datetime("${INIT.toISOString().slice(0, 19)}")], step=[lead], level=level,
                         lat=np.array(g["lat"]), lon=np.array(g["lon"]))).astype(np.float32).to_netcdf(d + "/theirs.nc")
def describe(path):
    da = xr.open_dataarray(path)
    picked = da.sel(step=lead)
    return {
        "name": da.name, "dims": list(da.dims), "shape": list(da.shape), "dtype": str(da.dtype),
        "coords": {k: {"dims": list(v.dims), "dtype": str(v.dtype), "values": [str(x) for x in v.values.tolist()]} for k, v in da.coords.items()},
        "sel_dims": list(picked.dims), "sel_step": int(picked.step), "bits": da.values.view(np.uint32).tobytes().hex()[:4096],
        "equal_values": None,
    }
ours, theirs = describe(d + "/ours.nc"), describe(d + "/theirs.nc")
a, b = xr.open_dataarray(d + "/ours.nc"), xr.open_dataarray(d + "/theirs.nc")
print(json.dumps({"ours": ours, "theirs": theirs, "identical_values": bool(np.array_equal(a.values.view(np.uint32), b.values.view(np.uint32))),
                  "xr_identical_data_and_coords": bool(a.drop_attrs().identical(b.drop_attrs())) if hasattr(a, "drop_attrs") else None}))
`;
      const { stdout } = await run("/usr/bin/python3", ["-c", script, dir, String(lead)]);
      const got = JSON.parse(stdout);
      const { ours, theirs } = got;
      assert.equal(ours.name, theirs.name, "variable name");
      assert.deepEqual(ours.dims, theirs.dims);
      assert.deepEqual(ours.shape, theirs.shape);
      assert.equal(ours.dtype, theirs.dtype);
      assert.deepEqual(Object.keys(ours.coords).sort(), Object.keys(theirs.coords).sort());
      for (const name of Object.keys(theirs.coords)) assert.deepEqual(ours.coords[name], theirs.coords[name], `coordinate ${name}: dims, dtype and values`);
      assert.equal(theirs.coords.step.dtype, "int64");
      assert.deepEqual(ours.sel_dims, ["time", "level", "lat", "lon"]);
      assert.equal(ours.sel_step, lead);
      assert.deepEqual(ours.sel_dims, theirs.sel_dims);
      assert.equal(got.identical_values, true, "same float32 bits");
      if (got.xr_identical_data_and_coords !== null) assert.equal(got.xr_identical_data_and_coords, true, "xarray: identical apart from attributes");
    });
  }

  it("keeps the input's level spelling and encodes a non-whole-hour init time in seconds", async () => {
    const levels = CHANNEL_NAMES.map((c) => c.toUpperCase());
    const initTime = new Date("2023-10-12T06:30:00Z");
    const back = await readForecastStep(await encodeForecastStep(step({ levels, initTime })), "x.nc");
    assert.deepEqual(back.levels, levels);
    assert.equal(back.initTime.toISOString(), initTime.toISOString());
  });

  it("rejects steps that do not add up, and files that are not forecast steps, naming the file", async () => {
    await assert.rejects(encodeForecastStep(step({ leadHours: 6.5 })), /leadHours 6.5 is not a whole non-negative number/);
    await assert.rejects(encodeForecastStep(step({ initTime: new Date(NaN) })), /initTime is not a valid date/);
    const bytes = await encodeForecastStep(step());
    await assert.rejects(readForecastStep(bytes.subarray(0, 2000), "output/run/006.nc"), /^Error: output\/run\/006\.nc: not a readable FuXi forecast step: file is truncated/);
    await assert.rejects(readForecastStep(new TextEncoder().encode("nope"), "x.nc"), /x\.nc: not a readable FuXi forecast step/);
  });
});
