// Writes the runtime's named log events (runtime/src/contract/log-events.ts) through pino.
import type { Logger } from "pino";
import { LOG_EVENT_FIELD, type RuntimeLogEventFields, type RuntimeLogEventName } from "./contract";

export type LogEvent = <N extends RuntimeLogEventName>(
  name: N,
  fields: RuntimeLogEventFields[N] & Record<string, unknown>,
  message: string,
  level?: "info" | "warn" | "error",
) => void;

/** Events are the runtime's progress API: they are written at info even when LOG_LEVEL is quieter. */
export function eventLogger(log: Logger): LogEvent {
  const events = log.isLevelEnabled("info") ? log : log.child({}, { level: "info" });
  return (name, fields, message, level = "info") => events[level]({ [LOG_EVENT_FIELD]: name, ...fields } as Record<string, unknown>, message);
}
