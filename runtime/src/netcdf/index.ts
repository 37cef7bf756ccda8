export { CHANNEL_NAMES, PRESSURE_LEVELS } from "./channels";
export { InputFileError } from "./errors";
export { readFuxiInput, type FuxiInput } from "./read-input";
export { encodeForecastStep, readForecastStep, FORECAST_VARIABLE, type ForecastStep } from "./forecast-step";
