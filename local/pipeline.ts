/**
 * One local forecast run, end to end: stack on loopback, models (stand-in or real), input
 * (synthetic or real), upload + marker, trigger, Batch Transform job with the real runtime,
 * outputs copied to a plain folder, quick-look maps.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { formatS3Uri, inputFolderKey, MANIFEST_NAME, MARKER_NAME, MODEL_FILES, outputFolderKey, RUNTIME_LOG_EVENTS, runtimeLogEvent, TRANSFORM_FOLDER, type Manifest } from "../runtime/src/contract";
import { writeFuxiInputNetcdf4 } from "../tools/fuxi-input-file";
import { writeStandinModels } from "../tools/standin-model";
import { startLocalStackOnLoopback, type LocalStackHandle } from "./local-stack";
import { DEFAULT_LEADS, localStepSource, renderQuicklooks, type QuicklookImage } from "./quicklook";
import type { LocalStack } from "./stack-settings";
import type { TransformJobRecord } from "./transform-runner";
import type { RunOutcome } from "../trigger/handler";

export const REDUCED_GRID = { lat: 181, lon: 360 };
export const FULL_GRID = { lat: 721, lon: 1440 };

export interface LocalRunOptions {
  stack: LocalStack;
  workDir: string;
  initTime: Date;
  grid: { lat: number; lon: number };
  /** Folder with the six real FuXi files; stand-ins are generated when omitted. */
  modelsDir?: string;
  /** A real FuXi input file; a synthetic one is written when omitted. */
  inputFile?: string;
  providers: ("cuda" | "cpu")[];
  /** Run the runtime in this image instead of a Node child process (`npm start -- --container`). */
  containerImage?: { id: string; tag: string };
  /** Leads for the quick-look maps; false: none. */
  quicklookLeads?: number[] | false;
  jobTimeoutMs?: number;
  onEvent?: (event: PipelineEvent) => void;
}

export type PipelineEvent =
  | { kind: "phase"; phase: string; detail?: string }
  | { kind: "job"; jobName: string; status: string; failureReason?: string }
  | { kind: "runtime-ready"; ms: number }
  | { kind: "step"; done: number; total: number; lead: number; stage?: string };

export interface LocalRunResult {
  runId: string;
  synthetic: boolean;
  standinModels: boolean;
  bucket: string;
  s3DataDir: string;
  logDir: string;
  outputUri: string;
  outputFolder: string;
  quicklookFolder: string;
  trigger: RunOutcome[];
  jobs: TransformJobRecord[];
  manifest: Manifest;
  /** The Batch Transform `.out` object (the runtime's answer: the manifest again). */
  transformOutput: { uri: string; body: unknown };
  files: { name: string; bytes: number }[];
  quicklooks: QuicklookImage[];
  timingsMs: Record<string, number>;
}

/** `2023101206` for 2023-10-12T06:00Z: the run folder name under the input prefix. */
export function runIdFor(initTime: Date): string {
  return initTime.toISOString().slice(0, 13).replace(/[-T]/g, "");
}

export async function runLocalPipeline(options: LocalRunOptions): Promise<LocalRunResult> {
  const emit = options.onEvent ?? (() => undefined);
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await work();
    } finally {
      timings[name] = Math.round(performance.now() - started);
    }
  };
  const runId = runIdFor(options.initTime);
  const { stack } = options;
  const total = stack.config.forecast.cascadeSteps.reduce((a, b) => a + b, 0);

  const modelDir = options.modelsDir ?? join(options.workDir, "models");
  if (options.modelsDir) {
    const missing = MODEL_FILES.filter((name) => !existsSync(join(options.modelsDir!, name)));
    if (missing.length > 0) throw new Error(`--models ${options.modelsDir}: missing ${missing.join(", ")} (expected the six FuXi files ${MODEL_FILES.join(", ")})`);
  } else {
    emit({ kind: "phase", phase: "models", detail: `writing stand-in ONNX models for a ${options.grid.lat}×${options.grid.lon} grid` });
    await timed("standinModelsMs", () => writeStandinModels(modelDir, options.grid));
  }

  let inputName: string;
  let inputBytes: Uint8Array;
  if (options.inputFile) {
    inputName = basename(options.inputFile);
    inputBytes = await readFile(options.inputFile);
  } else {
    emit({ kind: "phase", phase: "input", detail: `writing a SYNTHETIC ${options.grid.lat}×${options.grid.lon} input for ${options.initTime.toISOString()}` });
    inputName = "synthetic_fuxi_input.nc";
    inputBytes = await timed("syntheticInputMs", () => writeFuxiInputNetcdf4({ initTime: options.initTime, ...options.grid }));
  }

  let runtimeStarted = 0;
  let stepsDone = 0;
  const local: LocalStackHandle = await startLocalStackOnLoopback({
    stack,
    workDir: options.workDir,
    modelDir,
    providers: options.providers,
    containerImage: options.containerImage,
    onJobUpdate: (job) => {
      if (job.status === "InProgress" && runtimeStarted === 0) runtimeStarted = performance.now();
      emit({ kind: "job", jobName: job.request.TransformJobName, status: job.status, failureReason: job.failureReason });
    },
    onRuntimeLog: (record) => {
      if (runtimeLogEvent(record, RUNTIME_LOG_EVENTS.ready)) emit({ kind: "runtime-ready", ms: Math.round(performance.now() - runtimeStarted) });
      const step = runtimeLogEvent(record, RUNTIME_LOG_EVENTS.stepDone);
      if (step) emit({ kind: "step", done: ++stepsDone, total, lead: step.lead, stage: step.stage });
    },
  });
  try {
    emit({ kind: "phase", phase: "upload", detail: `${formatS3Uri({ bucket: stack.bucket, key: inputFolderKey(stack.config.prefixes.input, runId) })}${inputName} and ${MARKER_NAME}` });
    const trigger = await timed("uploadAndTriggerMs", () => local.uploadRun(runId, inputName, inputBytes));
    const started = trigger.filter((o) => o.decision === "started");
    if (started.length !== 1 || !started[0].jobName) {
      throw new Error(`the trigger did not start exactly one job: ${JSON.stringify(trigger)} (log: ${join(local.logDir, "trigger.log")})`);
    }
    const jobName = started[0].jobName;
    const job = await timed("transformJobMs", () => local.runner.waitForJob(jobName, options.jobTimeoutMs ?? 3_600_000));
    if (job.status !== "Completed") throw new Error(`transform job ${jobName} ${job.status}: ${job.failureReason} (runtime log: ${join(local.logDir, "runtime.log")})`);

    const outputPrefix = outputFolderKey(stack.config.prefixes.output, runId);
    const outputFolder = join(options.workDir, "output", runId);
    const files = await timed("downloadMs", () => downloadFolder(local.s3.client, stack.bucket, outputPrefix, outputFolder));
    const manifest = JSON.parse(await readFile(join(outputFolder, MANIFEST_NAME), "utf8")) as Manifest;
    const transformUri = job.outputs[0];
    const transformBody = JSON.parse(await readFile(join(outputFolder, TRANSFORM_FOLDER, `${jobName}.json.out`), "utf8"));

    const quicklookFolder = join(options.workDir, "quicklook");
    let quicklooks: QuicklookImage[] = [];
    if (options.quicklookLeads !== false) {
      emit({ kind: "phase", phase: "quicklook", detail: "rendering quick-look maps" });
      const note = [options.inputFile ? undefined : "SYNTHETIC input", options.modelsDir ? undefined : "stand-in model: not a forecast"].filter(Boolean).join(", ");
      quicklooks = await timed("quicklookMs", () =>
        renderQuicklooks({ source: localStepSource(outputFolder), outDir: quicklookFolder, leads: options.quicklookLeads || DEFAULT_LEADS, note: note || undefined }),
      );
    }
    return {
      runId,
      synthetic: !options.inputFile,
      standinModels: !options.modelsDir,
      bucket: stack.bucket,
      s3DataDir: local.s3DataDir,
      logDir: local.logDir,
      outputUri: formatS3Uri({ bucket: stack.bucket, key: outputPrefix }),
      outputFolder,
      quicklookFolder,
      trigger,
      jobs: local.runner.jobs(),
      manifest,
      transformOutput: { uri: transformUri, body: transformBody },
      files,
      quicklooks,
      timingsMs: timings,
    };
  } finally {
    await local.stop();
  }
}

/** Copies every object under `prefix` to `folder` (keeping sub-folders); returns names and sizes. */
async function downloadFolder(client: S3Client, bucket: string, prefix: string, folder: string): Promise<{ name: string; bytes: number }[]> {
  const files: { name: string; bytes: number }[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) {
      const name = object.Key!.slice(prefix.length);
      const target = join(folder, name);
      await mkdir(join(target, ".."), { recursive: true });
      const body = await client.send(new GetObjectCommand({ Bucket: bucket, Key: object.Key! }));
      const bytes = await body.Body!.transformToByteArray();
      await writeFile(target, bytes);
      files.push({ name, bytes: bytes.length });
    }
    token = page.NextContinuationToken;
  } while (token);
  return files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
