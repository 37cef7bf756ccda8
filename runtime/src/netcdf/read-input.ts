import { open, readFile } from "node:fs/promises";
import { CHANNEL_NAMES } from "../contract";
import { cdf3Source, Cdf3FormatError } from "./cdf3-source";
import { decodeCfTime, parseCfTimeUnits } from "./cf-time";
import { InputFileError } from "./errors";
import { describeH5Error, loadH5, withH5File, withH5Reader, type H5 } from "./h5";
import { h5Source } from "./h5-source";
import { attrNumber, attrText, type SourceFile, type SourceVariable } from "./source";

export interface FuxiInput {
  file: string;
  /** Time of the second frame (t0). */
  initTime: Date;
  /** [t0 - 6 h, t0] */
  times: Date[];
  /** Channel names as the file spells them (case kept), in FuXi order. */
  levels: string[];
  lat: Float64Array;
  lon: Float64Array;
  /** float32 [2, 70, lat, lon], C order */
  data: Float32Array;
}

const SIX_HOURS_MS = 6 * 3_600_000;
/** Coordinate tolerance in degrees: float32 coordinates of a 0.25° grid are exact, computed ones may be off by rounding. */
const DEGREE_TOLERANCE = 1e-4;

/** Accepted names for each axis of the data variable, in the required order. */
const AXES = [
  { role: "time", names: ["time"] },
  { role: "level", names: ["level", "channel"] },
  { role: "lat", names: ["lat", "latitude"] },
  { role: "lon", names: ["lon", "longitude"] },
] as const;

type Format = "hdf5" | "cdf3" | "unknown";

function detectFormat(bytes: Uint8Array): Format {
  const hdf5 = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length >= 8 && hdf5.every((b, i) => bytes[i] === b)) return "hdf5";
  if (bytes.length >= 4 && bytes[0] === 0x43 && bytes[1] === 0x44 && bytes[2] === 0x46 && [1, 2, 5].includes(bytes[3])) return "cdf3";
  return "unknown";
}

/**
 * Reads and validates a FuXi input file (netCDF-4/HDF5 or netCDF-3) as the original tooling writes it:
 * one float32 (or float64, converted) variable with dims (time=2, level=70, lat, lon), latitude 90 → -90,
 * longitude 0 → 360 - dlon, FuXi's 70 channel names in order, no NaN/Inf, CF time with t0 = time[1].
 * Every fault is an InputFileError naming `file`.
 */
export async function readFuxiInput(bytes: Uint8Array, file: string, expected: { lat: number; lon: number }): Promise<FuxiInput> {
  return readInput(bytes.subarray(0, 8), file, expected, {
    cdf3: async () => bytes,
    hdf5: (h5, read) => withH5Reader(h5, bytes, read),
  });
}

/** readFuxiInput from the local file `path` (HDF5 is read in place; netCDF-3 is loaded whole); `file` names it in errors. */
export async function readFuxiInputFile(path: string, file: string, expected: { lat: number; lon: number }): Promise<FuxiInput> {
  const handle = await open(path, "r");
  const head = new Uint8Array(8);
  let headLength: number;
  try {
    headLength = (await handle.read(head, 0, 8, 0)).bytesRead;
  } finally {
    await handle.close();
  }
  return readInput(head.subarray(0, headLength), file, expected, {
    cdf3: async () => new Uint8Array(await readFile(path)),
    hdf5: (h5, read) => withH5File(h5, path, read),
  });
}

type H5File = InstanceType<H5["File"]>;

interface InputOpeners {
  cdf3(): Promise<Uint8Array>;
  hdf5(h5: H5, read: (file: H5File) => FuxiInput): FuxiInput;
}

async function readInput(head: Uint8Array, file: string, expected: { lat: number; lon: number }, openers: InputOpeners): Promise<FuxiInput> {
  const format = detectFormat(head);
  if (format === "unknown") {
    const shown = Array.from(head.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new InputFileError(file, `not a NetCDF file (starts with bytes ${shown || "<empty>"}; expected HDF5 '\\x89HDF' or netCDF-3 'CDF')`);
  }
  if (format === "cdf3") {
    try {
      return validated(await cdf3Source(await openers.cdf3()), file, expected);
    } catch (error) {
      throw asInputError(file, error, "cannot be read as netCDF-3");
    }
  }
  const h5 = await loadH5();
  let opened = false;
  try {
    return openers.hdf5(h5, (h5File) => {
      opened = true;
      return validated(h5Source(h5, h5File), file, expected);
    });
  } catch (error) {
    if (error instanceof InputFileError) throw error;
    throw asInputError(file, error, opened ? "cannot be read as netCDF-4/HDF5" : "cannot be opened as netCDF-4/HDF5");
  }
}

function asInputError(file: string, error: unknown, context: string): InputFileError {
  if (error instanceof InputFileError) return error;
  if (error instanceof Cdf3FormatError) return new InputFileError(file, error.message);
  return new InputFileError(file, `${context}: ${describeH5Error(error)}`);
}

function validated(source: SourceFile, file: string, expected: { lat: number; lon: number }): FuxiInput {
  const fault = (message: string) => new InputFileError(file, message);
  const dataVar = findDataVariable(source, fault);

  const axisNames = dataVar.dims;
  const wanted = `(${AXES.map((a) => a.role).join(", ")})`;
  if (axisNames.length !== 4) throw fault(`variable '${dataVar.name}' has dims (${axisNames.join(", ")}); expected ${wanted}`);
  AXES.forEach((axis, i) => {
    if (!(axis.names as readonly string[]).includes(axisNames[i].toLowerCase())) {
      throw fault(`variable '${dataVar.name}' has dims (${axisNames.join(", ")}); expected ${wanted} (dimension ${i} must be ${axis.names.join(" or ")})`);
    }
  });
  const [nTime, nLevel, nLat, nLon] = dataVar.shape;
  if (nTime !== 2) throw fault(`variable '${dataVar.name}' has ${nTime} time steps; FuXi needs exactly 2 (t0 - 6 h and t0)`);
  if (nLevel !== CHANNEL_NAMES.length) throw fault(`variable '${dataVar.name}' has ${nLevel} levels; FuXi needs ${CHANNEL_NAMES.length} channels`);
  if (nLat !== expected.lat || nLon !== expected.lon) {
    throw fault(`grid is ${nLat}×${nLon} (lat×lon); the model expects ${expected.lat}×${expected.lon}`);
  }
  if (dataVar.type !== "float" && dataVar.type !== "double") {
    throw fault(`variable '${dataVar.name}' has type ${dataVar.type}; expected float32 (or float64)`);
  }
  for (const packing of ["scale_factor", "add_offset"]) {
    if (dataVar.attr(packing) !== undefined) throw fault(`variable '${dataVar.name}' is packed (${packing}); unpack it to float32 first`);
  }

  const coordinate = (dim: string, what: string) => {
    const v = source.variables.find((candidate) => candidate.name === dim && candidate.dims.length >= 1 && candidate.dims[0] === dim);
    if (!v) throw fault(`missing ${what} coordinate variable '${dim}'`);
    return v;
  };

  const levels = readLevels(source, coordinate(axisNames[1], "level"), fault);
  const lat = readAxis(source, coordinate(axisNames[2], "latitude"), 90, -180 / (nLat - 1), "latitude", fault);
  const lon = readAxis(source, coordinate(axisNames[3], "longitude"), 0, 360 / nLon, "longitude", fault);
  const times = readTimes(source, coordinate(axisNames[0], "time"), fault);

  const data = new Float32Array(2 * nLevel * nLat * nLon);
  source.readFloat32(dataVar, data);
  checkFinite(data, dataVar, levels, nLat * nLon, fault);

  return { file, initTime: times[1], times, levels, lat, lon, data };
}

function findDataVariable(source: SourceFile, fault: (m: string) => InputFileError): SourceVariable {
  const isDimensionCoordinate = (v: SourceVariable) => v.dims.length >= 1 && v.dims[0] === v.name;
  const auxiliary = new Set(
    source.variables.flatMap((v) => (attrText(v.attr("coordinates")) ?? "").split(/\s+/).filter(Boolean)),
  );
  const candidates = source.variables.filter((v) => !isDimensionCoordinate(v) && !auxiliary.has(v.name));
  if (candidates.length === 0) {
    const names = source.variables.map((v) => v.name).join(", ") || "none";
    throw fault(`missing data variable: no variable with dims (time, level, lat, lon) (${source.format} file has: ${names})`);
  }
  if (candidates.length > 1) {
    throw fault(`has ${candidates.length} data variables (${candidates.map((v) => v.name).join(", ")}); expected exactly one with dims (time, level, lat, lon)`);
  }
  return candidates[0];
}

function readLevels(source: SourceFile, v: SourceVariable, fault: (m: string) => InputFileError): string[] {
  if (v.type !== "string" && v.type !== "char") throw fault(`level coordinate '${v.name}' has type ${v.type}; expected channel names (strings like 'z500')`);
  const levels = source.readStrings(v).map((s) => s.trim());
  const lower = levels.map((s) => s.toLowerCase());
  const known = new Set(CHANNEL_NAMES);
  const unknown = lower.filter((s) => !known.has(s));
  if (unknown.length) throw fault(`unknown channel(s) in '${v.name}': ${unknown.map((s) => `'${s}'`).join(", ")}`);
  const seen = new Set<string>();
  const duplicated = lower.filter((s) => (seen.has(s) ? true : (seen.add(s), false)));
  if (duplicated.length) throw fault(`duplicated channel(s) in '${v.name}': ${duplicated.map((s) => `'${s}'`).join(", ")}`);
  const missing = CHANNEL_NAMES.filter((name) => !seen.has(name));
  if (missing.length) throw fault(`missing channel(s) in '${v.name}': ${missing.map((s) => `'${s}'`).join(", ")}`);
  const wrong = lower.findIndex((s, i) => s !== CHANNEL_NAMES[i]);
  if (wrong >= 0) {
    throw fault(`channels in '${v.name}' are not in FuXi order: position ${wrong} is '${levels[wrong]}', expected '${CHANNEL_NAMES[wrong]}'`);
  }
  return levels;
}

function readAxis(
  source: SourceFile,
  v: SourceVariable,
  first: number,
  step: number,
  what: "latitude" | "longitude",
  fault: (m: string) => InputFileError,
): Float64Array {
  if (v.type === "string" || v.type === "char" || v.type === "other") throw fault(`${what} '${v.name}' is not numeric`);
  const values = source.readNumbers(v);
  const n = values.length;
  const last = first + step * (n - 1);
  const fmt = (x: number) => String(Math.round(x * 1e6) / 1e6);
  const expectedRange = `${fmt(first)} → ${fmt(last)} in steps of ${fmt(step)}`;
  if (what === "latitude" && Math.abs(values[0] + 90) <= DEGREE_TOLERANCE && Math.abs(values[n - 1] - 90) <= DEGREE_TOLERANCE) {
    throw fault(`latitude '${v.name}' is reversed (-90 → 90); FuXi needs 90 → -90 (north first)`);
  }
  for (let i = 0; i < n; i++) {
    const want = first + step * i;
    if (!(Math.abs(values[i] - want) <= DEGREE_TOLERANCE)) {
      throw fault(`${what} '${v.name}' must run ${expectedRange}; value ${i} is ${values[i]} (expected ${fmt(want)})`);
    }
  }
  return values;
}

function readTimes(source: SourceFile, v: SourceVariable, fault: (m: string) => InputFileError): Date[] {
  if (v.type === "string" || v.type === "char" || v.type === "other") throw fault(`time '${v.name}' is not numeric`);
  let units;
  try {
    units = parseCfTimeUnits(attrText(v.attr("units")), attrText(v.attr("calendar")));
  } catch (error) {
    throw fault(`time '${v.name}' ${(error as Error).message}`);
  }
  const raw = source.readNumbers(v);
  if (raw.length !== 2) throw fault(`time '${v.name}' has ${raw.length} values; expected 2`);
  const times = Array.from(raw, (value) => decodeCfTime(value, units));
  if (times.some((t) => Number.isNaN(t.getTime()))) throw fault(`time '${v.name}' holds values that are not valid times`);
  const gapMs = times[1].getTime() - times[0].getTime();
  if (gapMs !== SIX_HOURS_MS) {
    throw fault(`time '${v.name}' values ${times.map((t) => t.toISOString()).join(", ")} are ${gapMs / 3_600_000} h apart; FuXi needs t0 - 6 h and t0`);
  }
  return times;
}

function checkFinite(data: Float32Array, v: SourceVariable, levels: string[], frame: number, fault: (m: string) => InputFileError): void {
  // Finite fill values mark missing data too (xarray would turn them into NaN); NaN fills are caught as NaN.
  const fills = [attrNumber(v.attr("_FillValue")), attrNumber(v.attr("missing_value"))]
    .filter((x): x is number => x !== undefined && Number.isFinite(x))
    .map(Math.fround);
  let nan = 0;
  let infinite = 0;
  let filled = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (x - x === 0) continue; // finite: the only branch taken on good data, so keep the loop this tight
    if (Number.isNaN(x)) nan++;
    else infinite++;
    if (first < 0) first = i;
  }
  for (const fill of fills) {
    for (let i = 0; i < data.length; i++) {
      if (data[i] !== fill) continue;
      filled++;
      if (first < 0 || i < first) first = i;
    }
  }
  if (first < 0) return;
  const channel = Math.floor(first / frame) % levels.length;
  const time = Math.floor(first / (frame * levels.length));
  const counts = [
    nan && `${nan} NaN`,
    infinite && `${infinite} infinite`,
    filled && `${filled} fill-value (missing)`,
  ].filter(Boolean);
  throw fault(`variable '${v.name}' has ${counts.join(", ")} value(s); first at time index ${time}, channel '${levels[channel]}' (the model must never see NaN/Inf)`);
}
