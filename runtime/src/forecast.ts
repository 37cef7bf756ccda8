// One forecast run: idempotency check, input decode, resume point, the cascade loop with encode and
// upload overlapping the next step, and the _SUCCESS manifest written last.
import { createHash } from "node:crypto";
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Logger } from "pino";
import { leadHours, stageSchedule, stepFileName, STAGE_NAMES } from "./cascade";
import { Codec } from "./codec";
import { InputFault } from "./errors";
import type { InferenceEngine } from "./inference";
import type { StepResult } from "./inference-worker";
import type { ModelFile } from "./model-store";
import { parseS3Uri, type ForecastRequest, type S3Location } from "./request";
import { deleteObject, downloadRanged, getObjectBytes, headObject, isNotFound, listObjects, s3Uri, uploadBytes, uploadFile } from "./s3";
import { createRunDir } from "./scratch";
import { timeEmbedding } from "./time-embedding";
import type { FuxiInput } from "./netcdf";
import { runUsage, type InstanceSettings, type RunUsage } from "./usage";

export const MANIFEST_NAME = "_SUCCESS";
/** S3 user metadata on every step file: the fingerprint of the run that wrote it (for resuming). */
export const FINGERPRINT_METADATA = "fuxi-fingerprint";

export interface StepRecord {
  step: number;
  lead: number;
  stage: string;
  file: string;
  bytes: number;
  /** True when the file was written by an earlier, interrupted invocation. */
  resumed: boolean;
  runMs?: number;
  loadMs?: number;
  encodeMs?: number;
  uploadMs?: number;
}

export interface Manifest {
  version: 1;
  runId: string;
  jobName: string;
  fingerprint: string;
  input: string;
  inputETag: string;
  initTime: string;
  outputPrefix: string;
  cascadeSteps: number[];
  outputFormat: "netcdf4";
  compression: "none" | "gzip";
  steps: number;
  resumedFromStep: number;
  grid: { lat: number; lon: number };
  providers: string[];
  models: ModelFile[];
  files: StepRecord[];
  startedAt: string;
  finishedAt: string;
  wallMs: number;
  /** Wall time from the first computed step to the last upload (excludes input decode and resume). */
  stepLoopMs: number;
  /** Instance, the visible part of the billed time, steps and bytes (runtime/src/usage.ts). */
  usage: RunUsage;
}

export interface RunContext {
  s3: S3Client;
  engine: InferenceEngine;
  grid: { lat: number; lon: number };
  models: ModelFile[];
  providers: string[];
  stepsInFlight: number;
  /** Local directory for the input and the step files in flight (h5wasm reads and writes real files). */
  scratchDir: string;
  log: Logger;
  /** Aborted on SIGTERM: the loop stops at the next step boundary, finished steps are kept. */
  signal: AbortSignal;
  /** For the manifest's usage: the instance and when this container started and became ready. */
  usage: { instance: InstanceSettings; containerStartedAt: Date; modelsReadyAt: Date | undefined };
}

/** Everything that determines the output bytes; equal fingerprints produce identical files. */
export function requestFingerprint(request: ForecastRequest, inputETag: string, models: ModelFile[]): string {
  const identity = {
    input: request.input,
    inputETag,
    cascadeSteps: request.cascadeSteps,
    outputFormat: request.outputFormat,
    compression: request.compression,
    models: models.map((m) => `${m.file}:${m.sha256}`),
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

/** Number of leading steps whose files exist and were written for this fingerprint. */
async function completedSteps(s3: S3Client, output: S3Location, total: number, fingerprint: string): Promise<Map<number, number>> {
  const existing = new Map((await listObjects(s3, output.bucket, output.key)).map((o) => [o.key, o.size]));
  const sizes = new Map<number, number>();
  for (let step = 0; step < total; step++) {
    const key = output.key + stepFileName(step);
    if (!existing.has(key)) break;
    const head = await headObject(s3, { bucket: output.bucket, key });
    if (!head || head.metadata[FINGERPRINT_METADATA] !== fingerprint) break;
    sizes.set(step, head.size);
  }
  return sizes;
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
async function rebuildWindow(s3: S3Client, codec: Codec, output: S3Location, input: FuxiInput, sizes: Map<number, number>, dir: string, k: number): Promise<Float32Array> {
  const frameSize = input.data.length / 2;
  const window = new Float32Array(2 * frameSize);
  const readFrame = async (step: number): Promise<Float32Array> => {
    const location = { bucket: output.bucket, key: output.key + stepFileName(step) };
    const path = await download(s3, location, { size: sizes.get(step)! }, dir, `resume-${stepFileName(step)}`);
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
  const { s3, engine, grid, log } = context;
  const started = Date.now();
  const inputLocation = parseS3Uri(request.input, "input");
  const output = parseS3Uri(request.outputPrefix, "outputPrefix");
  const manifestLocation = { bucket: output.bucket, key: output.key + MANIFEST_NAME };

  const inputHead = await headObject(s3, inputLocation);
  if (!inputHead) throw new InputFault(request.input, "object does not exist");
  const inputETag = inputHead.etag;
  const fingerprint = requestFingerprint(request, `${inputETag}:${inputHead.size}`, context.models);

  const { exists: manifestExists, manifest: previous } = await readManifest(s3, manifestLocation);
  if (previous?.fingerprint === fingerprint) {
    log.info({ jobName: request.jobName, manifest: s3Uri(manifestLocation) }, "run already complete; returning its manifest");
    return previous;
  }
  if (manifestExists) {
    // A manifest from a different request must not stand next to files being replaced.
    log.info({ jobName: request.jobName, previousJob: previous?.jobName ?? "(unreadable _SUCCESS)" }, "replacing the output of a different request");
    await deleteObject(s3, manifestLocation);
  }

  const schedule = stageSchedule(request.cascadeSteps);
  const total = schedule.length;
  const scratch = await createRunDir(context.scratchDir);
  try {
    return await computeSteps({ ...context, scratchDir: scratch }, request, { started, inputLocation, output, manifestLocation, inputHead, fingerprint, total, schedule });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

interface RunPlan {
  started: number;
  inputLocation: S3Location;
  output: S3Location;
  manifestLocation: S3Location;
  inputHead: { size: number; etag: string };
  fingerprint: string;
  total: number;
  schedule: number[];
}

async function computeSteps(context: RunContext, request: ForecastRequest, plan: RunPlan): Promise<Manifest> {
  const { s3, engine, grid, log, scratchDir } = context;
  const { started, inputLocation, output, manifestLocation, inputHead, fingerprint, total, schedule } = plan;
  const reader = new Codec();
  let input: FuxiInput;
  let resumeFrom: number;
  let resumedSizes: Map<number, number>;
  try {
    const inputPath = await download(s3, inputLocation, inputHead, scratchDir, "input.nc");
    input = await reader.readInput(inputPath, request.input, grid);
    await rm(inputPath, { force: true });
    resumedSizes = await completedSteps(s3, output, total, fingerprint);
    resumeFrom = resumedSizes.size;
    if (resumeFrom > 0) log.info({ jobName: request.jobName, resumeFrom, total }, "resuming an interrupted run");
    if (resumeFrom < total) {
      await engine.setWindow(resumeFrom === 0 ? input.data : await rebuildWindow(s3, reader, output, input, resumedSizes, scratchDir, resumeFrom));
    }
  } finally {
    await reader.close(); // frees the WASM heap that held the input while it was decoded
  }

  const records: StepRecord[] = [];
  for (const [step, bytes] of resumedSizes) {
    records.push({ step, lead: leadHours(step), stage: STAGE_NAMES[schedule[step]], file: stepFileName(step), bytes, resumed: true });
  }

  const encoder = new Codec();
  const inFlight = new Set<Promise<void>>();
  let pipelineError: unknown;
  const metadata = { [FINGERPRINT_METADATA]: fingerprint };

  const finishStep = async (step: number, { frame, frameIndex, runMs, loadMs }: StepResult): Promise<void> => {
    const lead = leadHours(step);
    const file = stepFileName(step);
    const path = join(scratchDir, file);
    let encodeMs: number;
    try {
      ({ ms: encodeMs } = await encoder.writeStep(
        { initTime: input.initTime, leadHours: lead, levels: input.levels, lat: input.lat, lon: input.lon, data: frame, compression: request.compression },
        path,
      ));
    } finally {
      engine.freeFrame(frameIndex);
    }
    const bytes = (await stat(path)).size;
    const uploadStarted = performance.now();
    await uploadFile(s3, { bucket: output.bucket, key: output.key + file }, path, { contentType: "application/x-netcdf", metadata });
    const uploadMs = performance.now() - uploadStarted;
    await rm(path, { force: true });
    const record: StepRecord = { step, lead, stage: STAGE_NAMES[schedule[step]], file, bytes, resumed: false, runMs, loadMs, encodeMs, uploadMs };
    records.push(record);
    log.info(
      { runId: request.runId, step, lead, stage: record.stage, runMs: Math.round(runMs), loadMs: Math.round(loadMs), encodeMs: Math.round(encodeMs), uploadMs: Math.round(uploadMs), bytes, rssMb: Math.round(process.memoryUsage.rss() / 1e6) },
      "step done",
    );
  };

  const loopStarted = performance.now();
  try {
    for (let step = resumeFrom; step < total; step++) {
      while (inFlight.size >= context.stepsInFlight) await Promise.race(inFlight);
      if (pipelineError !== undefined) throw pipelineError;
      if (context.signal.aborted) throw new Error(`run stopped at step ${step} of ${total}: the container is shutting down`);
      const result = await engine.step(schedule[step], timeEmbedding(input.initTime, step));
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
  const finished = new Date();
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
    finishedAt: finished.toISOString(),
    wallMs: finished.getTime() - started,
    stepLoopMs,
    usage: runUsage({ ...context.usage, invocationStartedAt: new Date(started), invocationEndedAt: finished, files: records }),
  };
  await uploadBytes(s3, manifestLocation, JSON.stringify(manifest, null, 2), { contentType: "application/json" });
  log.info({ jobName: request.jobName, steps: total, resumedFromStep: resumeFrom, wallMs: manifest.wallMs }, "run complete");
  return manifest;
}
