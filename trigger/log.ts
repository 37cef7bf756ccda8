import pino from "pino";

export type TriggerLogger = pino.Logger;

/** One JSON line per decision on stdout (CloudWatch Logs), or into `destination` (tests). */
export function createTriggerLogger(destination?: pino.DestinationStream): TriggerLogger {
  const options: pino.LoggerOptions = {
    base: { service: "fuxi-trigger" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}
