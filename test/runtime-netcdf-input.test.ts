import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CHANNEL_NAMES, InputFileError, readFuxiInput } from "../runtime/src/netcdf";
import {
  SYNTHETIC_NOTE,
  fuxiGrid,
  syntheticFuxiInput,
  writeFuxiInputNetcdf4,
  writeFuxiInputWithNcgen,
  type FuxiInputFileOptions,
} from "../tools/fuxi-input-file";

const run = promisify(execFile);
const GRID = { lat: 32, lon: 64 };
const INIT = new Date("2023-10-12T06:00:00Z");
const BASE: FuxiInputFileOptions = { initTime: INIT, ...GRID };
const FRAME = GRID.lat * GRID.lon;

async function expectFault(bytes: Uint8Array | Promise<Uint8Array>, pattern: RegExp, file = "input/2023101206/fuxi.nc") {
  const data = await bytes;
  await assert.rejects(readFuxiInput(data, file, GRID), (error: unknown) => {
    assert.ok(error instanceof InputFileError, `expected InputFileError, got ${String(error)}`);
    assert.equal(error.file, file);
    assert.equal(error.message, `${file}: ${error.fault}`);
    assert.match(error.fault, pattern);
    return true;
  });
}

function withValue(index: number, value: number): Float32Array {
  const data = syntheticFuxiInput(BASE);
  data[index] = value;
  return data;
}

describe("runtime netcdf: FuXi input reader", () => {
  const synthetic = syntheticFuxiInput(BASE);

  describe("valid files", () => {
    it("reads a netCDF-4 input back exactly: t0 from the second time, channel names, grid, data", async () => {
      const input = await readFuxiInput(await writeFuxiInputNetcdf4(BASE), "in.nc", GRID);
      assert.equal(input.file, "in.nc");
      assert.equal(input.initTime.toISOString(), "2023-10-12T06:00:00.000Z");
      assert.deepEqual(input.times.map((t) => t.toISOString()), ["2023-10-12T00:00:00.000Z", "2023-10-12T06:00:00.000Z"]);
      assert.deepEqual(input.levels, CHANNEL_NAMES);
      assert.deepEqual(input.lat, fuxiGrid(GRID).lat);
      assert.deepEqual(input.lon, fuxiGrid(GRID).lon);
      assert.ok(input.data instanceof Float32Array);
      assert.equal(input.data.length, 2 * 70 * FRAME);
      assert.ok(Buffer.from(input.data.buffer, input.data.byteOffset, input.data.byteLength).equals(Buffer.from(synthetic.buffer)));
    });

    it("compares channel names case-insensitively and keeps the file's spelling", async () => {
      const levels = CHANNEL_NAMES.map((c) => c.toUpperCase());
      const input = await readFuxiInput(await writeFuxiInputNetcdf4({ ...BASE, levels }), "in.nc", GRID);
      assert.deepEqual(input.levels, levels);
    });

    it("accepts latitude/longitude/channel as coordinate names and days since … units", async () => {
      const days = (INIT.getTime() - Date.UTC(2000, 0, 1)) / 86_400_000;
      const bytes = await writeFuxiInputNetcdf4({
        ...BASE,
        dimNames: ["time", "channel", "latitude", "longitude"],
        timeValues: [days - 0.25, days],
        timeUnits: "days since 2000-01-01 00:00:00",
        calendar: "standard",
      });
      const input = await readFuxiInput(bytes, "in.nc", GRID);
      assert.equal(input.initTime.toISOString(), INIT.toISOString());
    });

    it("converts a float64 data variable to float32 (documented choice: the model consumes float32)", async () => {
      const doubles = Float64Array.from(synthetic, (v, i) => v + (i % 7) * 1e-9);
      const input = await readFuxiInput(await writeFuxiInputNetcdf4({ ...BASE, data: doubles }), "in.nc", GRID);
      assert.ok(input.data.every((v, i) => v === Math.fround(doubles[i])));
    });

    for (const kind of ["classic", "64-bit offset"] as const) {
      it(`reads netCDF-3 ${kind} written by netCDF-C's ncgen (char level names)`, async () => {
        const bytes = await writeFuxiInputWithNcgen(BASE, kind);
        assert.equal(Buffer.from(bytes.subarray(0, 3)).toString(), "CDF");
        const input = await readFuxiInput(bytes, "in3.nc", GRID);
        assert.equal(input.initTime.toISOString(), INIT.toISOString());
        assert.deepEqual(input.levels, CHANNEL_NAMES);
        assert.ok(input.data.every((v, i) => v === synthetic[i]));
      });
    }

    it("reads netCDF-3 with time as the record (UNLIMITED) dimension", async () => {
      const bytes = await writeFuxiInputWithNcgen({ ...BASE, unlimitedTime: true }, "classic");
      const input = await readFuxiInput(bytes, "rec.nc", GRID);
      assert.equal(input.initTime.toISOString(), INIT.toISOString());
      assert.ok(input.data.every((v, i) => v === synthetic[i]));
    });

    it("reads netCDF-4 written by netCDF-C (ncgen: _Netcdf4Coordinates, char levels, dimension-only scale)", async () => {
      const input = await readFuxiInput(await writeFuxiInputWithNcgen(BASE, "netCDF-4"), "nc4.nc", GRID);
      assert.deepEqual(input.levels, CHANNEL_NAMES);
      assert.ok(input.data.every((v, i) => v === synthetic[i]));
    });

    it("reads the input exactly as xarray writes it (Debian python3-xarray, float32 and float64)", async function () {
      this.timeout(60_000);
      const dir = await mkdtemp(join(tmpdir(), "fuxi-xr-"));
      try {
        await writeFile(join(dir, "data.bin"), synthetic);
        const script = `
import sys, numpy as np, pandas as pd, xarray as xr
d = sys.argv[1]
data = np.fromfile(d + "/data.bin", dtype="<f4").reshape(2, 70, ${GRID.lat}, ${GRID.lon})
lat = np.linspace(90, -90, ${GRID.lat}); lon = np.arange(${GRID.lon}) * 360 / ${GRID.lon}
levels = ${JSON.stringify(CHANNEL_NAMES)}
times = pd.to_datetime(["2023-10-12T00:00", "2023-10-12T06:00"])
da = xr.DataArray(data, dims=["time", "level", "lat", "lon"], coords=dict(time=times, level=levels, lat=lat, lon=lon), name="data")
da.to_netcdf(d + "/f32.nc")
da.astype("float64").to_netcdf(d + "/f64.nc")
`;
        await run("/usr/bin/python3", ["-c", script, dir]);
        for (const name of ["f32.nc", "f64.nc"]) {
          const input = await readFuxiInput(new Uint8Array(await readFile(join(dir, name))), name, GRID);
          assert.equal(input.initTime.toISOString(), INIT.toISOString(), name);
          assert.deepEqual(input.levels, CHANNEL_NAMES, name);
          assert.ok(input.data.every((v, i) => v === synthetic[i]), name);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("labels the synthetic file and gives plausible physical ranges per channel", async () => {
      const bytes = await writeFuxiInputNetcdf4(BASE);
      const dir = await mkdtemp(join(tmpdir(), "fuxi-syn-"));
      try {
        await writeFile(join(dir, "in.nc"), bytes);
        const { stdout } = await run("ncdump", ["-h", join(dir, "in.nc")]);
        assert.ok(stdout.includes(SYNTHETIC_NOTE), stdout);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      const range = (name: string) => {
        const c = CHANNEL_NAMES.indexOf(name);
        let min = Infinity;
        let max = -Infinity;
        for (const t of [0, 1]) {
          for (const v of synthetic.subarray((t * 70 + c) * FRAME, (t * 70 + c + 1) * FRAME)) {
            min = Math.min(min, v);
            max = Math.max(max, v);
          }
        }
        return { min, max };
      };
      assert.ok(range("z1000").max < range("z500").min && range("z500").max < range("z50").min, "Z falls with pressure");
      assert.ok(range("z500").min > 9.80665 * 4500 && range("z500").max < 9.80665 * 6500, "Z500 is geopotential in m²/s²");
      for (const t of ["t50", "t500", "t850", "t2m"]) assert.ok(range(t).min > 195 && range(t).max < 310, `${t} in K`);
      for (const r of ["r300", "r850"]) assert.ok(range(r).min >= 0 && range(r).max <= 100, `${r} in %`);
      assert.ok(Math.abs(range("msl").min - 101325) < 5000 && Math.abs(range("msl").max - 101325) < 5000, "MSL near 101325 Pa");
      assert.ok(range("tp").min >= 0 && range("tp").max < 50, "TP in mm, never negative");
      assert.ok(range("u250").max > 20, "a jet");
      assert.ok(synthetic.every(Number.isFinite));
    });
  });

  describe("faults (each an InputFileError naming the file and the fault)", () => {
    it("not a NetCDF file", async () => {
      await expectFault(new TextEncoder().encode("<html>not found</html>"), /not a NetCDF file/);
      await expectFault(new Uint8Array(0), /not a NetCDF file.*<empty>/);
    });

    it("truncated netCDF-4 file", async () => {
      const bytes = await writeFuxiInputNetcdf4(BASE);
      const half = Math.floor(bytes.length / 2);
      await expectFault(bytes.subarray(0, half), new RegExp(`cannot be opened as netCDF-4/HDF5: file is truncated \\(${half} of ${bytes.length} bytes present\\)`));
      await expectFault(bytes.subarray(0, 100), /cannot be opened as netCDF-4\/HDF5: file is truncated \(100 of/);
    });

    it("reads a good file after a failed one (h5wasm state stays usable)", async () => {
      const bytes = await writeFuxiInputNetcdf4(BASE);
      await expectFault(bytes.subarray(0, 4096), /netCDF-4\/HDF5/);
      const input = await readFuxiInput(bytes, "in.nc", GRID);
      assert.equal(input.initTime.toISOString(), INIT.toISOString());
    });

    it("truncated netCDF-3 file (header intact, data cut)", async () => {
      const bytes = await writeFuxiInputWithNcgen(BASE, "64-bit offset");
      await expectFault(bytes.subarray(0, bytes.length - 1000), /truncated: variable 'data' needs bytes up to \d+ but the file has \d+/);
      await expectFault(bytes.subarray(0, 40), /netCDF-3 header/);
    });

    it("CDF-5 netCDF-3 is named as unsupported with the conversion command", async () => {
      await expectFault(writeFuxiInputWithNcgen(BASE, "cdf5"), /CDF-5.*not supported.*nccopy -k netCDF-4/);
    });

    it("wrong grid shape", async () => {
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, lat: 16, lon: 32 }), /grid is 16×32 \(lat×lon\); the model expects 32×64/);
    });

    it("reversed latitude", async () => {
      const latValues = fuxiGrid(GRID).lat.slice().reverse();
      const data = syntheticFuxiInput(BASE); // values do not matter, the coordinate is checked first
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, latValues, data }), /latitude 'lat' is reversed \(-90 → 90\)/);
    });

    it("latitude not evenly spaced / longitude from -180", async () => {
      const latValues = fuxiGrid(GRID).lat.slice();
      latValues[5] += 0.5;
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, latValues }), /latitude 'lat' must run 90 → -90 .*value 5 is/);
      const lonValues = Float64Array.from(fuxiGrid(GRID).lon, (l) => l - 180);
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, lonValues }), /longitude 'lon' must run 0 → 354.375 in steps of 5.625; value 0 is -180/);
    });

    it("NaN values: count and first channel", async () => {
      const data = syntheticFuxiInput(BASE);
      const first = (70 + CHANNEL_NAMES.indexOf("t850")) * FRAME + 17;
      data[first] = NaN;
      data[first + 100] = NaN;
      data[(70 + 69) * FRAME] = NaN;
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, data }), /has 3 NaN value\(s\); first at time index 1, channel 't850'/);
    });

    it("infinite values", async () => {
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, data: withValue(5 * FRAME, -Infinity) }), /has 1 infinite value\(s\); first at time index 0, channel 'z300'/);
    });

    it("values equal to a finite _FillValue are missing data", async () => {
      const data = withValue((70 + 66) * FRAME + 3, -9999);
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, data, fillValue: -9999 }), /has 1 fill-value \(missing\) value\(s\); first at time index 1, channel 'u10'/);
    });

    it("NaN in a netCDF-3 file too", async () => {
      await expectFault(writeFuxiInputWithNcgen({ ...BASE, data: withValue(69 * FRAME, NaN) }, "classic"), /1 NaN value\(s\); first at time index 0, channel 'tp'/);
    });

    it("missing data variable", async () => {
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, omitDataVariable: true }), /missing data variable.*has: time, level, lat, lon/);
    });

    it("two data variables", async () => {
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, extraVariables: ["data2"] }), /has 2 data variables \(data, data2\)/);
    });

    it("unknown, missing, duplicated and misordered channels", async () => {
      const unknown = [...CHANNEL_NAMES];
      unknown[3] = "z175";
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, levels: unknown }), /unknown channel\(s\) in 'level': 'z175'/);
      const duplicated = [...CHANNEL_NAMES];
      duplicated[66] = "t2m";
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, levels: duplicated }), /duplicated channel\(s\) in 'level': 't2m'/);
      const swapped = [...CHANNEL_NAMES];
      [swapped[13], swapped[14]] = [swapped[14], swapped[13]];
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, levels: swapped }), /not in FuXi order: position 13 is 't100', expected 't50'/);
    });

    it("a channel missing (69 levels)", async () => {
      const levels = CHANNEL_NAMES.filter((c) => c !== "msl");
      const data = syntheticFuxiInput(BASE).subarray(0, 2 * 69 * FRAME);
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, levels, data }), /has 69 levels; FuXi needs 70 channels/);
    });

    it("3 time steps", async () => {
      const data = new Float32Array(3 * 70 * FRAME).fill(1);
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, data, timeValues: [0, 6, 12] }), /has 3 time steps; FuXi needs exactly 2/);
    });

    it("bad time units, unsupported calendar, frames not 6 h apart", async () => {
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, timeUnits: "hours after 1900-01-01" }), /time 'time' units 'hours after 1900-01-01' are not CF time units/);
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, timeUnits: "fortnights since 1900-01-01" }), /unknown time unit 'fortnights'/);
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, timeUnits: "hours since 1900-13-01" }), /cannot read the reference date|not a valid date/);
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, calendar: "noleap" }), /calendar 'noleap' is not supported/);
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, timeValues: [0, 12] }), /are 12 h apart; FuXi needs t0 - 6 h and t0/);
    });

    it("wrong dimension names or order", async () => {
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, dimNames: ["time", "level", "y", "x"] }), /has dims \(time, level, y, x\); expected \(time, level, lat, lon\) \(dimension 2 must be lat or latitude\)/);
    });

    it("integer (packed) data types are rejected", async () => {
      const data = Int16Array.from(syntheticFuxiInput(BASE), (v) => Math.max(-32768, Math.min(32767, Math.round(v / 10))));
      await expectFault(writeFuxiInputNetcdf4({ ...BASE, data }), /has type short; expected float32 \(or float64\)/);
    });
  });
});
