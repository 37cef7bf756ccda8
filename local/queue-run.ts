/**
 * Several local forecasts through the run queue (`npm start -- --runs 6 --quota 2`): the markers land
 * within moments of each other, the emulated queue holds them, the real dispatcher starts at most
 * `fuxi:transform.maxConcurrentJobs` (here: the quota, unless the stack says less) and the local
 * runner answers ResourceLimitExceeded beyond the quota, as a new account would.
 */
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { RUNTIME_LOG_EVENTS } from "../runtime/src/contract";
import type { AsyncInvocationRecord } from "./async-endpoint-runner";
import { writeFuxiInputNetcdf4 } from "../tools/fuxi-input-file";
import { writeStandinModels } from "../tools/standin-model";
import { startLocalStackOnLoopback, type LocalStackHandle } from "./local-stack";
import { runIdFor } from "./pipeline";
import type { LocalStack } from "./stack-settings";
import type { TransformJobRecord } from "./transform-runner";

export interface QueueRunOptions {
  stack: LocalStack;
  workDir: string;
  firstInit: Date;
  runs: number;
  quota: number;
  grid: { lat: number; lon: number };
  providers: ("cuda" | "cpu")[];
  onEvent?: (event: QueueRunEvent) => void;
  timeoutMs?: number;
  /** serving.mode "async": runs go to a local async endpoint whose idle instance stops after idleMs. */
  asyncServing?: { idleMs: number };
}

export type RunState = "queued" | "running" | "done" | "failed";
export type QueueRunEvent =
  | { kind: "phase"; phase: string; detail?: string }
  | { kind: "run"; runId: string; state: RunState; jobName?: string; detail?: string }
  | { kind: "step"; runId: string; done: number; total: number };

export interface RunTimes {
  runId: string;
  state: RunState;
  jobName?: string;
  /** ms since the queue run started: marker uploaded, started (job InProgress / invocation taken by an instance), first step written, ended. */
  markerMs?: number;
  startedMs?: number;
  firstStepMs?: number;
  endedMs?: number;
  /** async: an instance with its models loaded took the invocation (no start-up, no model load). */
  warm?: boolean;
  failureReason?: string;
}

export interface QueueRunResult {
  serving: "batch" | "async";
  runs: RunTimes[];
  /** Runtime processes that loaded the models (runtime.ready events). */
  modelLoads: number;
  maxInProgress: number;
  /** CreateTransformJob calls SageMaker refused (quota full, or a duplicate name). */
  createRejections: number;
  deadLetters: number;
  wallMs: number;
  logDir: string;
}

export async function runLocalQueue(o: QueueRunOptions): Promise<QueueRunResult> {
  const emit = o.onEvent ?? (() => undefined);
  const started = performance.now();
  const total = o.stack.config.forecast.cascadeSteps.reduce((a, b) => a + b, 0);
  const runIds = Array.from({ length: o.runs }, (_, i) => runIdFor(new Date(o.firstInit.getTime() + i * 6 * 3600_000)));
  const modelDir = join(o.workDir, "models");
  emit({ kind: "phase", phase: "models", detail: `writing stand-in ONNX models for a ${o.grid.lat}×${o.grid.lon} grid` });
  await writeStandinModels(modelDir, o.grid);

  const state = new Map(runIds.map((id) => [id, { runId: id, state: "queued" as RunState } as RunTimes]));
  const since = () => performance.now() - started;
  const startedEpoch = Date.now() - (performance.now() - started);
  const at = (date: Date | undefined) => (date ? date.getTime() - startedEpoch : since());
  let modelLoads = 0;
  let local: LocalStackHandle | undefined;
  const runIdOfInference = new Map<string, Promise<string | undefined>>();
  const steps = new Map<string, number>();
  let inProgress = 0;
  let maxInProgress = 0;
  const ended = new Set<string>();
  let wake: () => void = () => undefined;
  const onJobUpdate = (job: TransformJobRecord) => {
    const runId = (job.request.Tags as { Key: string; Value: string }[] | undefined)?.find((t) => t.Key === "fuxi:runId")?.Value ?? "";
    const run = state.get(runId);
    if (!run) return;
    if (job.status === "InProgress") {
      inProgress++;
      maxInProgress = Math.max(maxInProgress, inProgress);
      Object.assign(run, { state: "running", jobName: job.request.TransformJobName, startedMs: since() });
    } else if (job.status === "Completed" || job.status === "Failed") {
      inProgress--;
      Object.assign(run, { state: job.status === "Completed" ? "done" : "failed", endedMs: since(), failureReason: job.failureReason });
      ended.add(runId);
      wake();
    }
    emit({ kind: "run", runId, state: run.state, jobName: run.jobName, detail: job.failureReason });
  };
  // async: the request object the invocation reads names its run.
  const runIdOf = (inv: AsyncInvocationRecord) => {
    let known = runIdOfInference.get(inv.inferenceId);
    if (!known) {
      const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(inv.inputLocation) ?? [];
      known = local!.s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key })).then(async (r) => JSON.parse(await r.Body!.transformToString()).runId as string).catch(() => undefined);
      runIdOfInference.set(inv.inferenceId, known);
    }
    return known;
  };
  const onInvocation = async (record: AsyncInvocationRecord) => {
    // The runner mutates its record: keep this update's state before waiting for the run's id.
    const inv = { ...record };
    const runId = await runIdOf(inv);
    const run = runId ? state.get(runId) : undefined;
    if (!run || ended.has(run.runId)) return;
    if (inv.status === "InProgress") {
      inProgress++;
      maxInProgress = Math.max(maxInProgress, inProgress);
      Object.assign(run, { state: "running", jobName: inv.inferenceId, startedMs: at(inv.startedAt), warm: inv.warm });
    } else if (inv.status === "Completed" || inv.status === "Failed" || inv.status === "Expired") {
      inProgress = Math.max(0, inProgress - 1);
      Object.assign(run, { state: inv.status === "Completed" ? "done" : "failed", endedMs: at(inv.endedAt), failureReason: inv.failureReason });
      ended.add(run.runId);
      wake();
    }
    emit({ kind: "run", runId: run.runId, state: run.state, jobName: run.jobName, detail: inv.failureReason });
  };
  const localStack = await startLocalStackOnLoopback({
    stack: o.stack,
    workDir: o.workDir,
    modelDir,
    providers: o.providers,
    quota: o.quota,
    // Local jobs take seconds, not the 15+ minutes the stack's 60 s re-check is sized for.
    triggerEnv: { RETRY_SECONDS: "5" },
    onJobUpdate,
    onRuntimeLog: (record) => {
      if (record.event === RUNTIME_LOG_EVENTS.ready) modelLoads++;
      if (record.event === RUNTIME_LOG_EVENTS.stepDone && typeof record.runId === "string") {
        const done = (steps.get(record.runId) ?? 0) + 1;
        steps.set(record.runId, done);
        const run = state.get(record.runId);
        if (run && run.firstStepMs === undefined) run.firstStepMs = since();
        emit({ kind: "step", runId: record.runId, done, total });
      }
    },
    ...(o.asyncServing ? { asyncServing: { idleMs: o.asyncServing.idleMs, onInvocationUpdate: (inv: AsyncInvocationRecord) => void onInvocation(inv) } } : {}),
  });
  local = localStack;
  try {
    emit({ kind: "phase", phase: "upload", detail: `${o.runs} SYNTHETIC inputs and markers; at most ${o.stack.config.transform.maxConcurrentJobs} job(s) at a time (fuxi:transform.maxConcurrentJobs), account quota ${o.quota}` });
    for (const runId of runIds) {
      const [y, m, d, h] = [runId.slice(0, 4), runId.slice(4, 6), runId.slice(6, 8), runId.slice(8, 10)];
      const bytes = await writeFuxiInputNetcdf4({ initTime: new Date(`${y}-${m}-${d}T${h}:00:00Z`), ...o.grid });
      const folder = `${o.stack.config.prefixes.input}${runId}/`;
      await local.s3.client.send(new PutObjectCommand({ Bucket: o.stack.bucket, Key: `${folder}synthetic_fuxi_input.nc`, Body: bytes }));
      await local.s3.client.send(new PutObjectCommand({ Bucket: o.stack.bucket, Key: `${folder}_SUCCESS`, Body: new Uint8Array(0), ContentLength: 0 }));
      state.get(runId)!.markerMs = since();
      emit({ kind: "run", runId, state: "queued" });
    }
    const deadline = Date.now() + (o.timeoutMs ?? 3_600_000);
    while (ended.size < runIds.length) {
      const dead = local.sqs.model.peek(local.queues.deadLetter).length;
      if (dead > 0) throw new Error(`${dead} run(s) went to the dead-letter queue (see ${join(local.logDir, "trigger.log")})`);
      if (Date.now() > deadline) throw new Error(`runs still unfinished after ${o.timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 1000);
      });
    }
    return {
      serving: o.asyncServing ? "async" : "batch",
      runs: runIds.map((id) => state.get(id)!),
      modelLoads,
      maxInProgress,
      createRejections: local.runner.operations().filter((op) => op === "CreateTransformJob").length - local.runner.jobs().length,
      deadLetters: local.sqs.model.peek(local.queues.deadLetter).length,
      wallMs: performance.now() - started,
      logDir: local.logDir,
    };
  } finally {
    await local.stop();
  }
}
