// The runtime's log events: JSON lines (pino) on stdout whose `event` field names what happened.
// Consumers (the local pipeline, benchmarks, tests, log queries) match `event`, never the message
// text. They are written whatever LOG_LEVEL says (LOG_LEVEL filters only the other lines).

export const LOG_EVENT_FIELD = "event";

export const RUNTIME_LOG_EVENTS = {
  listening: "runtime.listening",
  ready: "runtime.ready",
  notReady: "runtime.not-ready",
  runStarted: "run.started",
  runAlreadyComplete: "run.already-complete",
  runResuming: "run.resuming",
  staleObjectsRemoved: "run.stale-objects-removed",
  stepDone: "step.done",
  runComplete: "run.complete",
  requestRejected: "request.rejected",
  inputRejected: "input.rejected",
  runFailed: "run.failed",
} as const;
export type RuntimeLogEventName = (typeof RUNTIME_LOG_EVENTS)[keyof typeof RUNTIME_LOG_EVENTS];

interface RunFields {
  jobName: string;
  runId: string;
}

/** The fields each event carries (besides pino's level, time, service and msg). */
export interface RuntimeLogEventFields {
  "runtime.listening": { port: number };
  "runtime.ready": { modelDir: string; grid: { lat: number; lon: number }; stages: unknown; providers: string[]; models: unknown[]; downloading: string[] };
  "runtime.not-ready": { reason: string; file?: string };
  "run.started": RunFields & { input: string; outputPrefix: string; cascadeSteps: number[] };
  "run.already-complete": RunFields & { manifest: string };
  "run.resuming": RunFields & { resumeFrom: number; total: number };
  "run.stale-objects-removed": RunFields & { keys: string[] };
  "step.done": RunFields & {
    step: number; lead: number; stage: string; file: string; bytes: number; sha256: string; runMs: number; loadMs: number; encodeMs: number; uploadMs: number; sessionCreations: number; rssMb: number;
    /** Only on a stage switch served by the prefetching worker (FUXI_PREFETCH_NEXT_STAGE); absent otherwise. */
    prefetched?: true;
  };
  "run.complete": RunFields & { steps: number; resumedFromStep: number; wallMs: number; manifest: string };
  "request.rejected": { field: string; fault: string };
  "input.rejected": { file: string; fault: string };
  "run.failed": { error: string; jobName?: string; operation?: string; bucket?: string; key?: string };
}

/** The record's fields when it is the event `name`, else undefined (a JSON log line parsed by the consumer). */
export function runtimeLogEvent<N extends RuntimeLogEventName>(record: Record<string, unknown>, name: N): (RuntimeLogEventFields[N] & { time?: string; msg?: string }) | undefined {
  return record[LOG_EVENT_FIELD] === name ? (record as unknown as RuntimeLogEventFields[N]) : undefined;
}
