import { OUTPUT_CALENDAR, decodeCfTime, parseCfTimeUnits } from "./cf-time";
import { describeH5Error, loadH5, withH5File, withH5Reader, type H5 } from "./h5";
import { h5Source } from "./h5-source";
import { type NcFile, writeNetcdf4, writeNetcdf4File } from "./nc4-write";
import { attrText, type SourceVariable } from "./source";

export interface ForecastStep {
  initTime: Date;
  leadHours: number;
  levels: string[];
  lat: Float64Array;
  lon: Float64Array;
  /** float32 [70, lat, lon], C order */
  data: Float32Array;
  compression: "none" | "gzip";
}

/** The name xarray gives an unnamed DataArray, which is what the original tooling wrote (`xr.DataArray(...).to_netcdf`). */
export const FORECAST_VARIABLE = "__xarray_dataarray_variable__";
const DIMS = ["time", "step", "level", "lat", "lon"];
/** zlib level for `compression: "gzip"`: fast; float fields gain little from higher levels. */
const DEFLATE_LEVEL = 1;
const HOUR_MS = 3_600_000;

function checkStep(step: ForecastStep): void {
  const cells = step.lat.length * step.lon.length;
  if (step.data.length !== step.levels.length * cells) {
    throw new Error(`forecast step: data has ${step.data.length} values; levels×lat×lon is ${step.levels.length}×${step.lat.length}×${step.lon.length}`);
  }
  if (!Number.isInteger(step.leadHours) || step.leadHours < 0) throw new Error(`forecast step: leadHours ${step.leadHours} is not a whole non-negative number`);
  if (Number.isNaN(step.initTime.getTime())) throw new Error("forecast step: initTime is not a valid date");
}

/**
 * Writes one forecast step to `path` as the netCDF-4 file the original tooling wrote: one float32
 * variable with dims (time=1, step=1, level, lat, lon); time = [init] in CF units; step = [lead] as
 * plain integer hours without a units attribute, as `xr.DataArray(..., coords={"step": [lead]})`
 * writes it (a units attribute would make xarray decode a timedelta and break `sel(step=lead)`).
 * Same step → same bytes. One (lat, lon) field per chunk
 * (so it is written field by field), deflated with `compression: "gzip"`.
 */
export async function writeForecastStepFile(step: ForecastStep, path: string): Promise<void> {
  checkStep(step);
  writeNetcdf4File(await loadH5(), path, forecastStepSpec(step));
}

/** writeForecastStepFile, returning the bytes (tests, tools). */
export async function encodeForecastStep(step: ForecastStep): Promise<Uint8Array> {
  checkStep(step);
  return writeNetcdf4(await loadH5(), forecastStepSpec(step));
}

function forecastStepSpec(step: ForecastStep): NcFile {
  const initMs = step.initTime.getTime();
  const wholeHours = initMs % HOUR_MS === 0;
  const gzip = step.compression === "gzip";
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
        attrs: { long_name: "FuXi forecast" },
        chunks: [1, 1, 1, step.lat.length, step.lon.length],
        ...(gzip ? { deflateLevel: DEFLATE_LEVEL } : {}),
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
        compression: filters.some((f) => f.id === 1) ? "gzip" : "none",
      };
    });
  } catch (error) {
    throw new Error(`${file}: not a readable FuXi forecast step: ${describeH5Error(error)}`);
  }
}
