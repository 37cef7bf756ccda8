import { OUTPUT_CALENDAR, decodeCfTime, parseCfTimeUnits } from "./cf-time";
import { describeH5Error, loadH5, withH5File, withH5Reader, type H5 } from "./h5";
import { h5Source } from "./h5-source";
import { readFileSync, rmSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeField, SHUFFLE_DEFLATE, type FieldEncoding } from "./chunk-codec";
import { reservedDeflateValues, writeChunksInto } from "./hdf5-chunks";
import { type NcFile, writeNetcdf4File } from "./nc4-write";
import { attrText, type SourceVariable } from "./source";

export interface ForecastStep {
  initTime: Date;
  leadHours: number;
  levels: string[];
  lat: Float64Array;
  lon: Float64Array;
  /** float32 [70, lat, lon], C order */
  data: Float32Array;
  compression: StepCompression;
  /** With `compression: "bitround"`: explicit mantissa bits kept, one per level (channel). */
  bitroundBits?: number[];
}

export type StepCompression = "none" | "gzip" | "bitround";

/**
 * Compresses fields `0 … count-1` of `data` (each `cells` values) into one chunk each, in order.
 * The runtime passes a pool of worker threads; the default compresses on the calling thread.
 */
export type FieldEncoder = (data: Float32Array, cells: number, encodings: FieldEncoding[]) => Promise<Uint8Array[]>;

export const encodeFieldsHere: FieldEncoder = async (data, cells, encodings) => {
  const scratch = {};
  return encodings.map((encoding, field) => encodeField(data.subarray(field * cells, (field + 1) * cells), encoding, scratch));
};

/** netCDF-C 4.9's attribute for BitRound quantization (nc_def_var_quantize, NC_QUANTIZE_BITROUND). */
export const BITROUND_ATTRIBUTE = "_QuantizeBitRoundNumberOfSignificantBits";
/** Per level, since one variable holds all 70 channels: the bits kept for each. */
export const BITROUND_PER_LEVEL_ATTRIBUTE = "fuxi_bitround_bits_per_level";

/** The name xarray gives an unnamed DataArray, which is what the original tooling wrote (`xr.DataArray(...).to_netcdf`). */
export const FORECAST_VARIABLE = "__xarray_dataarray_variable__";
const DIMS = ["time", "step", "level", "lat", "lon"];
const HOUR_MS = 3_600_000;

function checkStep(step: ForecastStep): void {
  const cells = step.lat.length * step.lon.length;
  if (step.data.length !== step.levels.length * cells) {
    throw new Error(`forecast step: data has ${step.data.length} values; levels×lat×lon is ${step.levels.length}×${step.lat.length}×${step.lon.length}`);
  }
  if (!Number.isInteger(step.leadHours) || step.leadHours < 0) throw new Error(`forecast step: leadHours ${step.leadHours} is not a whole non-negative number`);
  if (Number.isNaN(step.initTime.getTime())) throw new Error("forecast step: initTime is not a valid date");
  if (step.compression === "bitround") {
    const bits = step.bitroundBits;
    if (!bits || bits.length !== step.levels.length || bits.some((b) => !Number.isInteger(b) || b < 1 || b > 23)) {
      throw new Error(`forecast step: bitround needs ${step.levels.length} mantissa bit counts from 1 to 23, got ${JSON.stringify(bits)}`);
    }
  }
}

/**
 * Writes one forecast step to `path` as the netCDF-4 file the original tooling wrote: one float32
 * variable with dims (time=1, step=1, level, lat, lon); time = [init] in CF units; step = [lead] as
 * plain integer hours without a units attribute, as `xr.DataArray(..., coords={"step": [lead]})`
 * writes it (a units attribute would make xarray decode a timedelta and break `sel(step=lead)`).
 * Same step → same bytes. One (lat, lon) field per chunk.
 * h5wasm lays the file out with the variable's chunks left unwritten; they are then written directly
 * (`hdf5-chunks.ts`). `none`: each field's bytes as they are, with no filter pipeline. `gzip` (and
 * `bitround`, which bit-rounds each field first): shuffle + deflate per chunk by `encodeFields` (worker
 * threads in the runtime); the compression overlaps the layout. Returns the size of the file.
 */
export async function writeForecastStepFile(step: ForecastStep, path: string, encodeFields: FieldEncoder = encodeFieldsHere): Promise<number> {
  checkStep(step);
  const h5 = await loadH5();
  const spec = forecastStepSpec(step);
  const cells = step.lat.length * step.lon.length;
  if (step.compression === "none") {
    writeNetcdf4File(h5, path, spec);
    // The fields' own bytes are the chunks (little-endian float32, as the variable is declared): no copy.
    const fieldBytes = cells * step.data.BYTES_PER_ELEMENT;
    const chunks = step.levels.map((_, level) => new Uint8Array(step.data.buffer, step.data.byteOffset + level * fieldBytes, fieldBytes));
    return writeChunksInto(path, { name: FORECAST_VARIABLE, chunks, filters: [] }, spec.variables[0].chunks!, 4);
  }
  const encodings: FieldEncoding[] = step.levels.map((_, level) => (step.compression === "bitround" ? { bitroundBits: step.bitroundBits![level] } : {}));
  const compressed = encodeFields(step.data, cells, encodings);
  try {
    writeNetcdf4File(h5, path, spec);
  } finally {
    // Never leave the encoders running into a failed write.
    await compressed.catch(() => undefined);
  }
  const chunks = await compressed;
  return writeChunksInto(path, { name: FORECAST_VARIABLE, chunks, filters: SHUFFLE_DEFLATE }, spec.variables[0].chunks!, 4);
}

/** writeForecastStepFile, returning the bytes (tests, tools). */
export async function encodeForecastStep(step: ForecastStep, encodeFields?: FieldEncoder): Promise<Uint8Array> {
  const path = join(tmpdir(), `fuxi-step-${randomUUID()}.nc`);
  try {
    await writeForecastStepFile(step, path, encodeFields);
    return new Uint8Array(readFileSync(path));
  } finally {
    rmSync(path, { force: true });
  }
}

function forecastStepSpec(step: ForecastStep): NcFile {
  const initMs = step.initTime.getTime();
  const wholeHours = initMs % HOUR_MS === 0;
  const bits = step.compression === "bitround" ? step.bitroundBits! : undefined;
  return {
    coordinates: [
      {
        name: "time",
        values: BigInt64Array.of(BigInt(wholeHours ? initMs / HOUR_MS : Math.round(initMs / 1000))),
        attrs: {
          standard_name: "forecast_reference_time",
          long_name: "initial time of forecast",
          units: wholeHours ? "hours since 1970-01-01 00:00:00" : "seconds since 1970-01-01 00:00:00",
          calendar: OUTPUT_CALENDAR,
        },
      },
      {
        name: "step",
        values: BigInt64Array.of(BigInt(step.leadHours)),
        // No `units`: readers get int64 hours, as from the original tooling (docs/fuxi-model.md, "Output files").
        attrs: { standard_name: "forecast_period", long_name: "forecast lead time in hours since forecast_reference_time" },
      },
      { name: "level", values: step.levels, attrs: { long_name: "FuXi channel (variable and pressure level in hPa)" } },
      {
        name: "lat",
        values: step.lat,
        attrs: { standard_name: "latitude", long_name: "latitude", units: "degrees_north", axis: "Y" },
      },
      {
        name: "lon",
        values: step.lon,
        attrs: { standard_name: "longitude", long_name: "longitude", units: "degrees_east", axis: "X" },
      },
    ],
    variables: [
      {
        name: FORECAST_VARIABLE,
        dims: DIMS,
        data: step.data,
        attrs: {
          long_name: "FuXi forecast",
          ...(bits ? { [BITROUND_ATTRIBUTE]: Int32Array.of(Math.min(...bits)), [BITROUND_PER_LEVEL_ATTRIBUTE]: Int32Array.from(bits) } : {}),
        },
        chunks: [1, 1, 1, step.lat.length, step.lon.length],
        chunksWrittenLater: { reservedFilterValues: reservedDeflateValues(SHUFFLE_DEFLATE) },
      },
    ],
    attrs: {
      Conventions: "CF-1.8",
      title: `FuXi forecast, lead ${step.leadHours} h`,
      source: "FuXi cascade (Chen et al. 2023) on SageMaker Batch Transform",
    },
  };
}

/** Reads a file written by writeForecastStepFile (for resuming a run and for quick-look maps). */
export async function readForecastStep(bytes: Uint8Array, file: string): Promise<ForecastStep> {
  const h5 = await loadH5();
  return readStep(h5, file, (read) => withH5Reader(h5, bytes, read));
}

/** readForecastStep from the local file `path`; `file` names it in errors. */
export async function readForecastStepFile(path: string, file: string): Promise<ForecastStep> {
  const h5 = await loadH5();
  return readStep(h5, file, (read) => withH5File(h5, path, read));
}

type H5File = InstanceType<H5["File"]>;

function readStep(h5: H5, file: string, open: (read: (h5File: H5File) => ForecastStep) => ForecastStep): ForecastStep {
  try {
    return open((h5File) => {
      const source = h5Source(h5, h5File);
      const variable = (name: string): SourceVariable => {
        const found = source.variables.find((v) => v.name === name);
        if (!found) throw new Error(`no variable '${name}'`);
        return found;
      };
      const data = variable(FORECAST_VARIABLE);
      if (data.dims.join(",") !== DIMS.join(",")) throw new Error(`'${FORECAST_VARIABLE}' has dims (${data.dims.join(", ")}); expected (${DIMS.join(", ")})`);
      if (data.type !== "float") throw new Error(`'${FORECAST_VARIABLE}' has type ${data.type}; expected float`);
      if (data.shape[0] !== 1 || data.shape[1] !== 1) throw new Error(`'${FORECAST_VARIABLE}' holds ${data.shape[0]}×${data.shape[1]} time×step; expected one`);

      const time = variable("time");
      const units = parseCfTimeUnits(attrText(time.attr("units")), attrText(time.attr("calendar")));
      const stepVar = variable("step");
      const stepUnits = attrText(stepVar.attr("units"));
      // Files written before step lost its units attribute said "hours"; both mean whole hours.
      if (stepUnits !== undefined && stepUnits !== "hours") throw new Error(`'step' units are '${stepUnits}'; expected none (whole hours)`);
      const values = new Float32Array(data.shape.reduce((a, b) => a * b, 1));
      source.readFloat32(data, values);
      const filters = (h5File.get(FORECAST_VARIABLE) as InstanceType<typeof h5.Dataset>).filters;
      return {
        initTime: decodeCfTime(source.readNumbers(time)[0], units),
        leadHours: source.readNumbers(stepVar)[0],
        levels: source.readStrings(variable("level")),
        lat: source.readNumbers(variable("lat")),
        lon: source.readNumbers(variable("lon")),
        data: values,
        ...compressionOf(filters.some((f) => f.id === 1), data.attr(BITROUND_PER_LEVEL_ATTRIBUTE)),
      };
    });
  } catch (error) {
    throw new Error(`${file}: not a readable FuXi forecast step: ${describeH5Error(error)}`);
  }
}

function compressionOf(deflated: boolean, bitsPerLevel: unknown): Pick<ForecastStep, "compression" | "bitroundBits"> {
  if (!deflated) return { compression: "none" };
  if (bitsPerLevel === undefined) return { compression: "gzip" };
  return { compression: "bitround", bitroundBits: Array.from(bitsPerLevel as ArrayLike<number>, Number) };
}
