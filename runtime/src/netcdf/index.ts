/**
 * NetCDF input/output of the FuXi runtime (runs inside the codec worker_thread).
 *
 * Decisions worth knowing:
 * - Input: netCDF-4/HDF5 via h5wasm, netCDF-3 classic / 64-bit offset via netcdfjs; CDF-5 is rejected
 *   with the nccopy command that converts it. A float64 data variable is accepted and rounded to
 *   float32 (the model consumes float32); every other type, and packed data, is a fault.
 * - Output: the file the original tooling wrote with `xr.DataArray(...).to_netcdf()`, so the variable
 *   is `__xarray_dataarray_variable__` (xr.open_dataarray reads it as an unnamed array); `step` is in
 *   "hours", which xarray decodes to timedelta64. Same step → same bytes (see h5.ts for how).
 * - Module state is only the lazily loaded h5wasm/netcdfjs modules; all arrays are returned on their
 *   own buffers so they can be transferred between threads.
 */
export { CHANNEL_NAMES, PRESSURE_LEVELS } from "../contract";
export { InputFileError } from "./errors";
export { readFuxiInput, readFuxiInputFile, type FuxiInput } from "./read-input";
export { encodeForecastStep, readForecastStep, readForecastStepFile, writeForecastStepFile, FORECAST_VARIABLE, type ForecastStep } from "./forecast-step";
