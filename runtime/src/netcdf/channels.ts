/** Pressure levels (hPa) of FuXi's upper-air channels, top of the atmosphere first. */
export const PRESSURE_LEVELS: readonly number[] = Object.freeze([50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000]);

/** FuXi's 70 channels in model order: Z, T, U, V, R at 13 levels each (channel = var*13 + level), then the surface fields. */
export const CHANNEL_NAMES: readonly string[] = Object.freeze([
  ...["z", "t", "u", "v", "r"].flatMap((variable) => PRESSURE_LEVELS.map((level) => `${variable}${level}`)),
  "t2m",
  "u10",
  "v10",
  "msl",
  "tp",
]);
