// One forecast run: idempotency check, input decode, resume point, removal of what an earlier request
// left, the cascade loop with encode and upload overlapping the next step, and the _SUCCESS manifest
// written last.
import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Logger } from "pino";
import { Codec } from "./codec";
import { collectGarbage } from "./collect-garbage";
import {
  leadHours,
  manifestKey,
  parseS3Uri,
  RUNTIME_LOG_EVENTS,
  stageSchedule,
  STAGE_NAMES,
  STEP_METADATA,
  stepFileName,
  transformFolderKey,
  type ForecastRequest,
  type Manifest,
  type S3Location,
  type StepRecord,
} from "./contract";
import { InputFault } from "./errors";
import type { InferenceEngine } from "./inference";
import type { StepResult } from "./inference-worker";
import type { LogEvent } from "./log-event";
import type { ModelFile } from "./model-store";
import { deleteObjects, downloadRanged, getObjectBytes, headObject, isNotFound, listObjects, s3Uri, uploadBytes, uploadFile } from "./s3";
import { createRunDir } from "./scratch";
import { timeEmbedding } from "./time-embedding";
import type { FuxiInput } from "./netcdf";
import { runUsage, type InstanceSettings, type RunUsage } from "./usage";

export interface RunContext {
  s3: S3Client;
  engine: InferenceEngine;
  grid: { lat: number; lon: number };
  models: ModelFile[];
  providers: string[];
  stepsInFlight: number;
  /** FUXI_PREFETCH_NEXT_STAGE: at the first step of each stage, start creating the next stage's session. */
  prefetchNextStage: boolean;
  /** Threads compressing gzip/bitround steps. */
  encodeThreads: number;
  /** Mantissa bits kept per channel with `compression: "bitround"` (part of the fingerprint). */
  bitroundBits: number[];
  /** Local directory for the input and the step files in flight (h5wasm reads and writes real files). */
  scratchDir: string;
  log: Logger;
  /** The named events of the contract (progress, completion). */
  logEvent: LogEvent;
  /** Aborted on SIGTERM: the loop stops at the next step boundary, finished steps are kept. */
  signal: AbortSignal;
  /** For the manifest's usage: the instance and when this container started and became ready. */
  usage: { instance: InstanceSettings; containerStartedAt: Date; modelsReadyAt: Date | undefined };
}

/** Everything that determines the output bytes; equal fingerprints produce identical files. */
export function requestFingerprint(request: ForecastRequest, inputETag: string, models: ModelFile[], bitroundBits?: number[]): string {
  const identity = {
    input: request.input,
    inputETag,
    cascadeSteps: request.cascadeSteps,
    outputFormat: request.outputFormat,
    compression: request.compression,
    models: models.map((m) => `${m.file}:${m.sha256}`),
    // Only bitround output depends on the bits; other fingerprints stay as they were.
    ...(request.compression === "bitround" ? { bitroundBits } : {}),
  };
  return createHash("sha256").update(JSON.stringify(identity)).digest("hex");
}

/** The stored manifest; `undefined` manifest with `exists` when the object is there but not a manifest. */
async function readManifest(s3: S3Client, location: S3Location): Promise<{ exists: boolean; manifest?: Manifest }> {
  let bytes: Uint8Array;
  try {
    bytes = await getObjectBytes(s3, location);
  } catch (error) {
    if (isNotFound(error)) return { exists: false };
    throw error;
  }
  try {
    return { exists: true, manifest: JSON.parse(Buffer.from(bytes).toString("utf8")) as Manifest };
  } catch {
    return { exists: true };
  }
}

interface FinishedStep {
  bytes: number;
  sha256: string;
}

/**
 * The leading steps whose files exist, were written for this fingerprint and carry their SHA-256,
 * and every other key under the output folder (outside `_transform/`): what an earlier request left.
 */
async function surveyOutput(s3: S3Client, output: S3Location, total: number, fingerprint: string): Promise<{ finished: Map<number, FinishedStep>; stale: string[] }> {
  const keys = (await listObjects(s3, output.bucket, output.key)).map((o) => o.key);
  const existing = new Set(keys);
  const finished = new Map<number, FinishedStep>();
  for (let step = 0; step < total; step++) {
    const key = output.key + stepFileName(step);
    if (!existing.has(key)) break;
    const head = await headObject(s3, { bucket: output.bucket, key });
    const sha256 = head?.metadata[STEP_METADATA.sha256];
    if (!head || head.metadata[STEP_METADATA.fingerprint] !== fingerprint || !sha256) break;
    finished.set(step, { bytes: head.size, sha256 });
  }
  const keep = new Set([...finished.keys()].map((step) => output.key + stepFileName(step)));
  return { finished, stale: keys.filter((key) => !keep.has(key) && !key.startsWith(transformFolderKey(output.key))) };
}

function frameOf(window: Float32Array, index: 0 | 1): Float32Array {
  const size = window.length / 2;
  return window.subarray(index * size, (index + 1) * size);
}

const DOWNLOAD = { rangeBytes: 64 * 1024 * 1024, concurrency: 8, onProgress: () => undefined };

/** Downloads the object `head` describes into `dir` as `name` and returns the path. */
async function download(s3: S3Client, location: S3Location, head: { size: number; etag?: string }, dir: string, name: string): Promise<string> {
  const path = join(dir, name);
  await downloadRanged(s3, location, path, head.size, { ...DOWNLOAD, ifMatch: head.etag });
  return path;
}

/** Rebuilds the window for step k from the files of steps k-2 and k-1 (out[:,0] == in[:,1]). */
async function rebuildWindow(s3: S3Client, codec: Codec, output: S3Location, input: FuxiInput, finished: Map<number, FinishedStep>, dir: string, k: number): Promise<Float32Array> {
  const frameSize = input.data.length / 2;
  const window = new Float32Array(2 * frameSize);
  const readFrame = async (step: number): Promise<Float32Array> => {
    const location = { bucket: output.bucket, key: output.key + stepFileName(step) };
    const path = await download(s3, location, { size: finished.get(step)!.bytes }, dir, `resume-${stepFileName(step)}`);
    const stepData = await codec.readStep(path, s3Uri(location));
    await rm(path, { force: true });
    if (stepData.data.length !== frameSize || stepData.leadHours !== leadHours(step)) {
      throw new InputFault(s3Uri(location), `cannot resume from it: ${stepData.data.length} values at lead ${stepData.leadHours} h, expected ${frameSize} at ${leadHours(step)} h`);
    }
    return stepData.data;
  };
  window.set(k >= 2 ? await readFrame(k - 2) : frameOf(input.data, 1), 0);
  window.set(await readFrame(k - 1), frameSize);
  return window;
}

export async function runForecast(context: RunContext, request: ForecastRequest): Promise<Manifest> {
  const { s3, logEvent } = context;
  const started = Date.now();
  // The request parser checked both URIs.
  const inputLocation = parseS3Uri(request.input)!;
  const output = parseS3Uri(request.outputPrefix)!;
  const manifestLocation = { bucket: output.bucket, key: manifestKey(output.key) };

  const inputHead = await headObject(s3, inputLocation);
  if (!inputHead) throw new InputFault(request.input, "object does not exist");
  const inputETag = inputHead.etag;
  const fingerprint = requestFingerprint(request, `${inputETag}:${inputHead.size}`, context.models, context.bitroundBits);

  const { exists: manifestExists, manifest: previous } = await readManifest(s3, manifestLocation);
  if (previous?.fingerprint === fingerprint) {
    logEvent(RUNTIME_LOG_EVENTS.runAlreadyComplete, { jobName: request.jobName, runId: request.runId, manifest: s3Uri(manifestLocation) }, "run already complete; returning its manifest");
    return previous;
  }

  const schedule = stageSchedule(request.cascadeSteps);
  const total = schedule.length;
  const scratch = await createRunDir(context.scratchDir);
  try {
    return await computeSteps({ ...context, scratchDir: scratch }, request, { started, inputLocation, output, manifestLocation, manifestExists, inputHead, fingerprint, total, schedule });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

interface RunPlan {
  started: number;
  inputLocation: S3Location;
  output: S3Location;
  manifestLocation: S3Location;
  /** A `_SUCCESS` of a different request (or an unreadable one) is there. */
  manifestExists: boolean;
  inputHead: { size: number; etag: string };
  fingerprint: string;
  total: number;
  schedule: number[];
}

async function computeSteps(context: RunContext, request: ForecastRequest, plan: RunPlan): Promise<Manifest> {
  const { s3, engine, grid, logEvent, scratchDir } = context;
  const { started, inputLocation, output, manifestLocation, inputHead, fingerprint, total, schedule } = plan;
  const run = { jobName: request.jobName, runId: request.runId };
  const reader = new Codec();
  let input: FuxiInput;
  let resumeFrom: number;
  let finished: Map<number, FinishedStep>;
  try {
    // A bad input is rejected before anything under the output folder changes: an earlier complete run stays as it was.
    const inputPath = await download(s3, inputLocation, inputHead, scratchDir, "input.nc");
    input = await reader.readInput(inputPath, request.input, grid);
    await rm(inputPath, { force: true });
    const survey = await surveyOutput(s3, output, total, fingerprint);
    // Bit-rounded files cannot rebuild the exact window, so a bitround run starts over (same bytes again).
    finished = request.compression === "bitround" ? new Map() : survey.finished;
    resumeFrom = finished.size;
    // The manifest goes first, so the folder never looks complete while files are replaced; then
    // every file this request will not keep (other fingerprints, other step counts, _FAILED.json).
    if (plan.manifestExists) await deleteObjects(s3, output.bucket, [manifestLocation.key]);
    const stale = survey.stale.filter((key) => key !== manifestLocation.key);
    if (stale.length > 0) {
      await deleteObjects(s3, output.bucket, stale);
      logEvent(RUNTIME_LOG_EVENTS.staleObjectsRemoved, { ...run, keys: stale }, "removed what an earlier request left in the output folder");
    }
    if (resumeFrom > 0) logEvent(RUNTIME_LOG_EVENTS.runResuming, { ...run, resumeFrom, total }, "resuming an interrupted run");
    if (resumeFrom < total) {
      await engine.setWindow(resumeFrom === 0 ? input.data : await rebuildWindow(s3, reader, output, input, finished, scratchDir, resumeFrom));
    }
    // The inference worker owns the window now; a resumed run would otherwise keep the input (581 MB) here.
    input = { ...input, data: new Float32Array(0) };
  } finally {
    await reader.close(); // frees the WASM heap that held the input while it was decoded
  }

  const records: StepRecord[] = [];
  for (const [step, { bytes, sha256 }] of finished) {
    records.push({ step, lead: leadHours(step), stage: STAGE_NAMES[schedule[step]], file: stepFileName(step), bytes, sha256, resumed: true });
  }

  const encoder = new Codec(context.encodeThreads);
  const inFlight = new Set<Promise<void>>();
  let pipelineError: unknown;

  const finishStep = async (step: number, { frame, runMs, loadMs, sessionCreations, prefetched }: StepResult): Promise<void> => {
    const lead = leadHours(step);
    const file = stepFileName(step);
    const path = join(scratchDir, file);
    // The codec worker hashes the file it wrote (S3 metadata is sent before the body, so the hash comes
    // first). The frame is transferred to it.
    const { ms: encodeMs, bytes, sha256 } = await encoder.writeStep(
      { initTime: input.initTime, leadHours: lead, levels: input.levels, lat: input.lat, lon: input.lon, data: frame, compression: request.compression, bitroundBits: context.bitroundBits },
      path,
    );
    const uploadStarted = performance.now();
    const metadata = { [STEP_METADATA.fingerprint]: fingerprint, [STEP_METADATA.sha256]: sha256 };
    await uploadFile(s3, { bucket: output.bucket, key: output.key + file }, path, { contentType: "application/x-netcdf", metadata });
    const uploadMs = performance.now() - uploadStarted;
    await rm(path, { force: true });
    collectGarbage(); // the upload's part buffers now, not during the next step's session.run peak
    const record: StepRecord = { step, lead, stage: STAGE_NAMES[schedule[step]], file, bytes, sha256, resumed: false, runMs, loadMs, encodeMs, uploadMs };
    records.push(record);
    logEvent(
      RUNTIME_LOG_EVENTS.stepDone,
      { ...run, step, lead, stage: record.stage, file, bytes, sha256, runMs: Math.round(runMs), loadMs: Math.round(loadMs), encodeMs: Math.round(encodeMs), uploadMs: Math.round(uploadMs), sessionCreations, rssMb: Math.round(process.memoryUsage.rss() / 1e6), ...(prefetched ? { prefetched: true as const } : {}) },
      "step done",
    );
  };

  const loopStarted = performance.now();
  try {
    for (let step = resumeFrom; step < total; step++) {
      while (inFlight.size >= context.stepsInFlight) await Promise.race(inFlight);
      if (pipelineError !== undefined) throw pipelineError;
      if (context.signal.aborted) throw new Error(`run stopped at step ${step} of ${total}: the container is shutting down`);
      const firstOfStage = step === resumeFrom || schedule[step - 1] !== schedule[step];
      const nextStage = context.prefetchNextStage && firstOfStage ? schedule.slice(step).find((stage) => stage !== schedule[step]) : undefined;
      const result = await engine.step(schedule[step], timeEmbedding(input.initTime, step), nextStage);
      if (result.warning) context.log.warn({ ...run, step, stage: STAGE_NAMES[schedule[step]] }, result.warning);
      const task: Promise<void> = finishStep(step, result)
        .catch((error) => {
          pipelineError ??= error;
        })
        .finally(() => inFlight.delete(task));
      inFlight.add(task);
    }
    await Promise.all(inFlight);
    if (pipelineError !== undefined) throw pipelineError;
  } finally {
    await Promise.allSettled(inFlight);
    await encoder.close();
    await engine.releaseWindow();
  }

  const stepLoopMs = performance.now() - loopStarted;
  records.sort((a, b) => a.step - b.step);
  const finishedAt = new Date();
  const manifest: Manifest = {
    version: 1,
    runId: request.runId,
    jobName: request.jobName,
    fingerprint,
    input: request.input,
    inputETag: inputHead.etag,
    initTime: input.initTime.toISOString(),
    outputPrefix: request.outputPrefix,
    cascadeSteps: request.cascadeSteps,
    outputFormat: request.outputFormat,
    compression: request.compression,
    steps: total,
    resumedFromStep: resumeFrom,
    grid,
    providers: context.providers,
    models: context.models,
    files: records,
    startedAt: new Date(started).toISOString(),
    finishedAt: finishedAt.toISOString(),
    wallMs: finishedAt.getTime() - started,
    stepLoopMs,
    usage: runUsage({ ...context.usage, invocationStartedAt: new Date(started), invocationEndedAt: finishedAt, files: records }),
  };
  // Anything that appeared under the folder during the run (outside _transform/) is not this run's.
  const listed = new Set(records.map((r) => output.key + r.file));
  const strays = (await listObjects(s3, output.bucket, output.key)).map((o) => o.key).filter((key) => !listed.has(key) && !key.startsWith(transformFolderKey(output.key)));
  if (strays.length > 0) {
    await deleteObjects(s3, output.bucket, strays);
    logEvent(RUNTIME_LOG_EVENTS.staleObjectsRemoved, { ...run, keys: strays }, "removed objects that appeared in the output folder during the run");
  }
  await uploadBytes(s3, manifestLocation, JSON.stringify(manifest, null, 2), { contentType: "application/json" });
  logEvent(RUNTIME_LOG_EVENTS.runComplete, { ...run, steps: total, resumedFromStep: resumeFrom, wallMs: manifest.wallMs, manifest: s3Uri(manifestLocation) }, "run complete");
  return manifest;
}
