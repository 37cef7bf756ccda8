/**
 * FuXi input files for tests, benchmarks and the local pipeline: synthetic (clearly labelled) physical
 * fields on any grid, written as netCDF-4 the way xarray writes them, or as netCDF-3 through Debian's
 * `ncgen` (no npm package writes netCDF-3). Options exist to produce every kind of faulty file.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CHANNEL_NAMES, PRESSURE_LEVELS } from "../runtime/src/contract";
import { loadH5 } from "../runtime/src/netcdf/h5";
import { type NcAttributes, type NcCoordinate, writeNetcdf4 } from "../runtime/src/netcdf/nc4-write";

export const SYNTHETIC_NOTE =
  "SYNTHETIC: analytic stand-in fields from tools/fuxi-input-file.ts (no observations, not a real analysis)";

const G = 9.80665;
const HOUR_MS = 3_600_000;

export interface GridSize {
  lat: number;
  lon: number;
}

/** Latitudes 90 → -90 and longitudes 0 → 360 - dlon of a FuXi grid of this size. */
export function fuxiGrid({ lat, lon }: GridSize): { lat: Float64Array; lon: Float64Array } {
  return {
    lat: Float64Array.from({ length: lat }, (_, i) => 90 - (180 * i) / (lat - 1)),
    lon: Float64Array.from({ length: lon }, (_, j) => (360 * j) / lon),
  };
}

/**
 * Plausible, smooth, deterministic fields [2, 70, lat, lon] for t0 - 6 h and t0: geopotential falling
 * with pressure, temperature 200-305 K by latitude and height, mid-latitude jets, humidity in %,
 * MSL around 101325 Pa, precipitation ≥ 0 mm. Synthetic: for plumbing and benchmarks only.
 */
export function syntheticFuxiInput({ initTime, lat, lon }: { initTime: Date } & GridSize): Float32Array {
  const grid = fuxiGrid({ lat, lon });
  const cells = lat * lon;
  const out = new Float32Array(2 * CHANNEL_NAMES.length * cells);
  const byLon = (f: (lambda: number) => number) => Float64Array.from(grid.lon, (l) => f((l * Math.PI) / 180));
  const cosLon = byLon(Math.cos);
  const sin3Lon = byLon((l) => Math.sin(3 * l));
  for (let t = 0; t < 2; t++) {
    const time = new Date(initTime.getTime() - (1 - t) * 6 * HOUR_MS);
    const utcHour = time.getUTCHours() + time.getUTCMinutes() / 60;
    const drift = t * 0.1; // the pattern moves a little between the two frames
    const wave2 = byLon((l) => Math.sin(2 * l + drift));
    const wave3 = byLon((l) => Math.cos(3 * l + drift));
    const sun = byLon((l) => Math.cos(((utcHour + (l * 12) / Math.PI - 14) / 24) * 2 * Math.PI));
    for (let i = 0; i < lat; i++) {
      const phi = (grid.lat[i] * Math.PI) / 180;
      const cosPhi = Math.cos(phi);
      const sin2 = Math.sin(phi) ** 2;
      const surfaceT = 302 - 50 * sin2;
      const jet = Math.exp(-(((Math.abs(grid.lat[i]) - 40) / 15) ** 2));
      const easterlies = 5 * cosPhi ** 8;
      /** channel value at (i, j) = base + Σ coefficient · term[j] */
      const put = (channel: number, base: number, ...terms: [number, Float64Array][]) => {
        const start = (t * CHANNEL_NAMES.length + channel) * cells + i * lon;
        for (let j = 0; j < lon; j++) {
          let value = base;
          for (const [coefficient, term] of terms) value += coefficient * term[j];
          out[start + j] = value;
        }
      };
      PRESSURE_LEVELS.forEach((p, k) => {
        const height = 7400 * Math.log(1013.25 / p) * (1 - 0.06 * sin2);
        const temperature = Math.max(surfaceT - 0.0065 * height, 205 + 10 * sin2);
        const shear = Math.min(1, 250 / p) * (p < 250 ? p / 250 + 0.4 : 1);
        const humidity = (85 - 36 * Math.abs(Math.sin(2 * phi))) * Math.min(1, p / 400);
        put(k, G * height, [G * 60 * jet, wave2]);
        put(13 + k, temperature, [2 * cosPhi, cosLon]);
        put(26 + k, 30 * jet * shear - easterlies, [3, sin3Lon]);
        put(39 + k, 0, [6 * jet, wave3]);
        put(52 + k, humidity, [Math.min(8, humidity / 3), sin3Lon]);
      });
      put(65, surfaceT, [4 * cosPhi, sun]);
      put(66, 8 * jet - 1.2 * easterlies, [2, sin3Lon]);
      put(67, 0, [3 * jet, wave3]);
      put(68, 101325 + 1200 * Math.cos(3 * phi), [-1500 * jet, sin3Lon]);
      const rain = 4 * cosPhi ** 12 + 2 * jet * -0.3;
      const start = (t * CHANNEL_NAMES.length + 69) * cells + i * lon;
      for (let j = 0; j < lon; j++) out[start + j] = Math.max(0, rain + 4 * cosPhi ** 12 * sin3Lon[j] + 2 * jet * cosLon[j]);
    }
  }
  return out;
}

/** Everything can be overridden to produce faulty files for the reader's tests. */
export interface FuxiInputFileOptions extends GridSize {
  initTime: Date;
  /** [times, 70, lat, lon]; default syntheticFuxiInput. Float64Array/Int16Array write double/short. */
  data?: Float32Array | Float64Array | Int16Array;
  levels?: string[];
  latValues?: Float64Array;
  lonValues?: Float64Array;
  /** Raw time values in `timeUnits`; default [init - 6 h, init] in hours since 1900-01-01. */
  timeValues?: number[];
  timeUnits?: string;
  calendar?: string;
  /** Names of the (time, level, lat, lon) dimensions; default xarray's usual ones. */
  dimNames?: [string, string, string, string];
  variableName?: string;
  /** Leave out the data variable (coordinates only). */
  omitDataVariable?: boolean;
  /** Extra data variables (e.g. a second field) with the data variable's dims. */
  extraVariables?: string[];
  /** Make time the record (UNLIMITED) dimension; netCDF-3 via ncgen only. */
  unlimitedTime?: boolean;
  /** _FillValue of the data variable; default NaN, as xarray writes for floats. */
  fillValue?: number;
  attrs?: NcAttributes;
}

interface ResolvedInput {
  dimNames: [string, string, string, string];
  variableName: string;
  levels: string[];
  lat: Float64Array;
  lon: Float64Array;
  timeValues: number[];
  timeUnits: string;
  calendar: string;
  data: Float32Array | Float64Array | Int16Array;
  attrs: NcAttributes;
}

function resolve(options: FuxiInputFileOptions): ResolvedInput {
  const grid = fuxiGrid(options);
  const hoursSince1900 = (options.initTime.getTime() - Date.UTC(1900, 0, 1)) / HOUR_MS;
  return {
    dimNames: options.dimNames ?? ["time", "level", "lat", "lon"],
    variableName: options.variableName ?? "data",
    levels: options.levels ?? [...CHANNEL_NAMES],
    lat: options.latValues ?? grid.lat,
    lon: options.lonValues ?? grid.lon,
    timeValues: options.timeValues ?? [hoursSince1900 - 6, hoursSince1900],
    timeUnits: options.timeUnits ?? "hours since 1900-01-01",
    calendar: options.calendar ?? "proleptic_gregorian",
    data: options.data ?? syntheticFuxiInput(options),
    attrs: { title: "FuXi input (synthetic)", synthetic: SYNTHETIC_NOTE, ...options.attrs },
  };
}

/** A FuXi input as xarray writes it (`DataArray.to_netcdf`): netCDF-4, coordinate variables, vlen string levels. */
export async function writeFuxiInputNetcdf4(options: FuxiInputFileOptions): Promise<Uint8Array> {
  const input = resolve(options);
  const [timeDim, levelDim, latDim, lonDim] = input.dimNames;
  const integralTimes = input.timeValues.every(Number.isInteger);
  const coordinates: NcCoordinate[] = [
    {
      name: timeDim,
      values: integralTimes ? BigInt64Array.from(input.timeValues, BigInt) : Float64Array.from(input.timeValues),
      attrs: { units: input.timeUnits, calendar: input.calendar },
    },
    { name: levelDim, values: input.levels },
    { name: latDim, values: input.lat, attrs: { _FillValue: Float64Array.of(NaN), units: "degrees_north", long_name: "latitude" } },
    { name: lonDim, values: input.lon, attrs: { _FillValue: Float64Array.of(NaN), units: "degrees_east", long_name: "longitude" } },
  ];
  // xarray writes _FillValue = NaN on float variables.
  const fillValue = options.fillValue ?? NaN;
  const fill: NcAttributes =
    input.data instanceof Float32Array ? { _FillValue: Float32Array.of(fillValue) } : input.data instanceof Float64Array ? { _FillValue: Float64Array.of(fillValue) } : {};
  const names = options.omitDataVariable ? [] : [input.variableName, ...(options.extraVariables ?? [])];
  const h5 = await loadH5();
  return writeNetcdf4(h5, {
    coordinates,
    variables: names.map((name) => ({ name, dims: [...input.dimNames], data: input.data, attrs: fill })),
    attrs: input.attrs,
  });
}

export type Netcdf3Kind = "classic" | "64-bit offset" | "cdf5" | "netCDF-4";

/**
 * The same file in CDL, for `ncgen`: levels as a 2-D char array (netCDF-3 has no strings).
 * Values are printed with 9 significant digits, enough to round-trip float32 exactly.
 */
export function fuxiInputCdl(options: FuxiInputFileOptions): string {
  const input = resolve(options);
  const [timeDim, levelDim, latDim, lonDim] = input.dimNames;
  const width = Math.max(1, ...input.levels.map((s) => s.length));
  const type = input.data instanceof Float64Array ? "double" : input.data instanceof Int16Array ? "short" : "float";
  const number = (x: number) => (Number.isNaN(x) ? "NaN" : x === Infinity ? "Infinity" : x === -Infinity ? "-Infinity" : x.toPrecision(9));
  const list = (values: ArrayLike<number>) => Array.from(values, number).join(", ");
  const text = (s: string) => JSON.stringify(s);
  const globalAttrs = Object.entries(input.attrs)
    .map(([k, v]) => `\t\t:${k} = ${typeof v === "string" ? text(v) : typeof v === "number" ? number(v) : list(v as ArrayLike<number>)} ;`)
    .join("\n");
  const dataVars = options.omitDataVariable ? [] : [input.variableName, ...(options.extraVariables ?? [])];
  return [
    "netcdf fuxi_input {",
    "dimensions:",
    `\t${timeDim} = ${options.unlimitedTime ? `UNLIMITED ; // (${input.timeValues.length} currently)` : `${input.timeValues.length} ;`}`,
    `\t${levelDim} = ${input.levels.length} ;`,
    `\t${latDim} = ${input.lat.length} ;`,
    `\t${lonDim} = ${input.lon.length} ;`,
    `\tnchar = ${width} ;`,
    "variables:",
    `\tdouble ${timeDim}(${timeDim}) ;`,
    `\t\t${timeDim}:units = ${text(input.timeUnits)} ;`,
    `\t\t${timeDim}:calendar = ${text(input.calendar)} ;`,
    `\tchar ${levelDim}(${levelDim}, nchar) ;`,
    `\tdouble ${latDim}(${latDim}) ;`,
    `\t\t${latDim}:units = "degrees_north" ;`,
    `\tdouble ${lonDim}(${lonDim}) ;`,
    `\t\t${lonDim}:units = "degrees_east" ;`,
    ...dataVars.map((name) => `\t${type} ${name}(${timeDim}, ${levelDim}, ${latDim}, ${lonDim}) ;`),
    "",
    "// global attributes:",
    globalAttrs,
    "data:",
    ` ${timeDim} = ${list(input.timeValues)} ;`,
    ` ${levelDim} = ${input.levels.map(text).join(", ")} ;`,
    ` ${latDim} = ${list(input.lat)} ;`,
    ` ${lonDim} = ${list(input.lon)} ;`,
    ...dataVars.map((name) => ` ${name} = ${list(input.data)} ;`),
    "}",
    "",
  ].join("\n");
}

const NCGEN_KIND: Record<Netcdf3Kind, string> = { classic: "classic", "64-bit offset": "64-bit offset", cdf5: "cdf5", "netCDF-4": "netCDF-4" };

/** Writes the file with netCDF-C's own `ncgen` (Debian package netcdf-bin). */
export async function writeFuxiInputWithNcgen(options: FuxiInputFileOptions, kind: Netcdf3Kind): Promise<Uint8Array> {
  const dir = await mkdtemp(join(tmpdir(), "fuxi-ncgen-"));
  try {
    const cdl = join(dir, "input.cdl");
    const nc = join(dir, "input.nc");
    await writeFile(cdl, fuxiInputCdl(options));
    await promisify(execFile)("ncgen", ["-k", NCGEN_KIND[kind], "-o", nc, cdl], { maxBuffer: 1 << 20 });
    return new Uint8Array(await readFile(nc));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
