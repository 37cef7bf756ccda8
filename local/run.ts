/** `npm start [-- flags]`: the whole pipeline on this machine. See docs/local-run.md. */
import { existsSync, mkdirSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { cascadeStepsFault } from "../runtime/src/contract";
import { MultiBar, SingleBar, Presets } from "cli-progress";
import { runLocalQueue } from "./queue-run";
import { FULL_GRID, LocalRunResult, REDUCED_GRID, runIdFor, runLocalPipeline, type PipelineEvent } from "./pipeline";
import { parseLeads } from "./quicklook-cli";
import { loadLocalStack } from "./stack-settings";
import { buildLocalImage, DockerUnavailableError, type BuiltImage } from "../tools/runtime-image";
import { NONCURRENT_VERSION_DAYS } from "../components/dataBucket";
import { formatBytes, formatMoney, priceRuns, type CostModel } from "../cost";

const USAGE = `usage: npm start -- [--init 2023101206] [--steps 20 | 20,20,20] [--full | --grid 181x360]
                  [--models DIR] [--input FILE.nc] [--providers cpu | cuda | cuda,cpu]
                  [--stack dev] [--workdir DIR] [--leads 24,120,240,360] [--no-quicklook]
                  [--runs N [--quota Q]]   (N runs 6 h apart through the run queue, account quota Q)
                  [--serving async [--idle-seconds S]]   (runs served by a local async endpoint that stops its instance after S s idle)
                  [--container]   (the runtime in the image of \`npm run image:local\`, CPU)`;

export interface CliOptions {
  initTime: Date;
  cascadeSteps?: number[];
  grid: { lat: number; lon: number };
  modelsDir?: string;
  inputFile?: string;
  providers?: ("cuda" | "cpu")[];
  stack: string;
  workDir?: string;
  leads: number[] | false;
  /** More than one run (or a quota): through the run queue, see local/queue-run.ts. */
  runs?: number;
  quota?: number;
  /** serving.mode async: runs go to the local async endpoint (through the run queue). */
  serving: "batch" | "async";
  idleSeconds: number;
  /** Run the runtime in the local CPU image instead of a Node process. */
  container: boolean;
}

/** Parses the flags; throws an Error naming the flag and the fault. */
export function parseCli(argv: string[]): CliOptions | "help" {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      init: { type: "string", default: "2023101206" },
      steps: { type: "string" },
      full: { type: "boolean", default: false },
      grid: { type: "string" },
      models: { type: "string" },
      input: { type: "string" },
      providers: { type: "string" },
      stack: { type: "string", default: "dev" },
      workdir: { type: "string" },
      leads: { type: "string" },
      "no-quicklook": { type: "boolean", default: false },
      runs: { type: "string" },
      quota: { type: "string" },
      serving: { type: "string", default: "batch" },
      "idle-seconds": { type: "string" },
      container: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help";
  if (positionals.length > 0) throw new Error(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const init = /^(\d{4})(\d{2})(\d{2})(\d{2})$/.exec(values.init);
  const initTime = init ? new Date(Date.UTC(+init[1], +init[2] - 1, +init[3], +init[4])) : undefined;
  if (!init || !initTime || runIdFor(initTime) !== values.init || +init[4] % 6 !== 0)
    throw new Error(`--init must be YYYYMMDDHH with HH one of 00, 06, 12, 18 (a valid UTC date), got ${JSON.stringify(values.init)}`);
  let cascadeSteps: number[] | undefined;
  if (values.steps !== undefined) {
    if (!/^\d+(,\d+)*$/.test(values.steps)) throw new Error(`--steps must be 1 to 3 comma-separated whole numbers (e.g. 20 or 20,20,20), got ${JSON.stringify(values.steps)}`);
    cascadeSteps = values.steps.split(",").map(Number);
    const fault = cascadeStepsFault(cascadeSteps);
    if (fault) throw new Error(`--steps ${JSON.stringify(values.steps)}: ${fault.at === undefined ? "" : `entry ${fault.at + 1} `}${fault.fault} (e.g. 20 or 20,20,20)`);
  }
  if (values.full && values.grid) throw new Error("--full and --grid cannot be combined");
  let grid = values.full || (values.input && !values.grid) ? FULL_GRID : REDUCED_GRID;
  if (values.grid) {
    const m = /^(\d+)x(\d+)$/.exec(values.grid);
    if (!m || +m[1] < 3 || +m[2] < 4) throw new Error(`--grid must be LATxLON with at least 3 latitudes and 4 longitudes (e.g. 181x360), got ${JSON.stringify(values.grid)}`);
    grid = { lat: +m[1], lon: +m[2] };
  }
  for (const [flag, path] of [["--models", values.models], ["--input", values.input]] as const)
    if (path !== undefined && !existsSync(path)) throw new Error(`${flag} ${path}: no such file or folder`);
  let providers: ("cuda" | "cpu")[] | undefined;
  if (values.providers !== undefined) {
    const names = values.providers.split(",");
    if (names.length === 0 || names.some((n) => n !== "cuda" && n !== "cpu")) throw new Error(`--providers must list cuda and/or cpu, got ${JSON.stringify(values.providers)}`);
    providers = names as ("cuda" | "cpu")[];
    if (values.container && providers.includes("cuda")) throw new Error("--container runs the local image, the CPU variant: --providers must be cpu");
  }
  const count = (flag: string, text: string | undefined, max: number) => {
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text) || +text < 1 || +text > max) throw new Error(`${flag} must be a whole number from 1 to ${max}, got ${JSON.stringify(text)}`);
    return +text;
  };
  if (values.serving !== "batch" && values.serving !== "async") throw new Error(`--serving must be batch or async, got ${JSON.stringify(values.serving)}`);
  const idleSeconds = count("--idle-seconds", values["idle-seconds"], 3600);
  if (idleSeconds !== undefined && values.serving !== "async") throw new Error("--idle-seconds applies to --serving async only");
  const runs = count("--runs", values.runs, 100);
  const quota = count("--quota", values.quota, 100);
  const queued = runs !== undefined || quota !== undefined || values.serving === "async";
  if (queued && (values.models || values.input)) throw new Error("--runs/--quota use synthetic inputs and stand-in models: drop --models and --input");
  if (queued && values.container) throw new Error("--runs/--quota run the runtime as local processes: drop --container (the image runs one forecast at a time)");
  return {
    runs,
    quota,
    serving: values.serving,
    idleSeconds: idleSeconds ?? 30,
    initTime,
    cascadeSteps,
    grid,
    modelsDir: values.models && resolve(values.models),
    inputFile: values.input && resolve(values.input),
    providers,
    stack: values.stack,
    workDir: values.workdir && resolve(values.workdir),
    leads: values["no-quicklook"] ? false : values.leads ? parseLeads(values.leads) : [24, 120, 240, 360],
    container: values.container,
  };
}

/** Real FuXi weights use the GPU when this machine has one; the stand-in always runs on CPU. */
export function defaultProviders(realModels: boolean, gpuPresent: boolean): ("cuda" | "cpu")[] {
  return realModels && gpuPresent ? ["cuda"] : ["cpu"];
}

function hasNvidiaGpu(): boolean {
  return existsSync("/dev/nvidia0") || existsSync("/proc/driver/nvidia/version");
}

async function main() {
  let cli: CliOptions | "help";
  try {
    cli = parseCli(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (cli === "help") {
    console.log(USAGE);
    return;
  }
  if (cli.runs !== undefined || cli.quota !== undefined || cli.serving === "async") return queueMain(cli);
  const stack = loadLocalStack(cli.stack, { cascadeSteps: cli.cascadeSteps });
  const providers = cli.providers ?? (cli.container ? ["cpu"] : defaultProviders(cli.modelsDir !== undefined, hasNvidiaGpu()));
  const runId = runIdFor(cli.initTime);
  const workDir = cli.workDir ?? resolve("local-run", `${runId}-${new Date().toISOString().replace(/[-:]/g, "").slice(0, 15)}`);
  const steps = stack.config.forecast.cascadeSteps;

  console.log(`FuXi local run ${runId}: cascade [${steps.join(", ")}] (${steps.reduce((a, b) => a + b, 0)} steps), grid ${cli.grid.lat}×${cli.grid.lon}, providers ${providers.join(",")}`);
  console.log(`  settings  ${relative(process.cwd(), stack.source)} (stack ${stack.config.stack}), bucket ${stack.bucket}, model ${stack.modelName}`);
  console.log(`  input     ${cli.inputFile ?? "SYNTHETIC (analytic fields, not a real analysis)"}`);
  console.log(`  models    ${cli.modelsDir ?? "stand-in ONNX models (simple arithmetic, NOT FuXi: the maps are not a forecast)"}`);
  if (cli.modelsDir && !providers.includes("cuda")) console.log("  warning   no NVIDIA GPU found: running the real FuXi models on CPU is very slow");
  console.log(`  workdir   ${workDir}`);

  let containerImage: BuiltImage | undefined;
  if (cli.container) {
    try {
      mkdirSync(join(workDir, "logs"), { recursive: true });
      containerImage = await buildLocalImage({ log: join(workDir, "logs", "image-build.log"), progress: (line) => console.log(`  image     ${line}`) });
    } catch (error) {
      console.error(`\nlocal run failed: ${(error as Error).message}`);
      process.exitCode = error instanceof DockerUnavailableError ? 69 : 1;
      return;
    }
    console.log(`  runtime   container ${containerImage.tag} (${containerImage.id.slice(0, 19)}…), built in ${containerImage.seconds.toFixed(1)} s: docker run … serve`);
  }

  const bar = new SingleBar({ format: "  forecast  |{bar}| {value}/{total} steps  +{lead} h {stage}  {duration_formatted}  ETA {eta_formatted}", hideCursor: true, etaBuffer: 5, noTTYOutput: true, notTTYSchedule: 5000 }, Presets.shades_classic);
  let barStarted = false;
  const onEvent = (event: PipelineEvent) => {
    if (event.kind === "phase") console.log(`  ${event.phase.padEnd(9)} ${event.detail ?? ""}`);
    else if (event.kind === "job") {
      if (event.status === "InProgress") console.log(`  job       ${event.jobName} InProgress: starting the runtime container`);
      else if (barStarted) bar.stop();
    } else if (event.kind === "runtime-ready") {
      console.log(`  runtime   ready after ${(event.ms / 1000).toFixed(1)} s`);
    } else if (event.kind === "step") {
      if (!barStarted) {
        bar.start(event.total, 0, { lead: 0, stage: "" });
        barStarted = true;
      }
      bar.update(event.done, { lead: event.lead, stage: event.stage ?? "" });
    }
  };

  const started = performance.now();
  let result: LocalRunResult;
  try {
    result = await runLocalPipeline({
      stack,
      workDir,
      initTime: cli.initTime,
      grid: cli.grid,
      modelsDir: cli.modelsDir,
      inputFile: cli.inputFile,
      providers,
      containerImage,
      quicklookLeads: cli.leads,
      onEvent,
    });
  } catch (error) {
    if (barStarted) bar.stop();
    console.error(`\nlocal run failed: ${(error as Error).message}`);
    process.exitCode = 1;
    return;
  }
  if (barStarted) bar.stop();
  const costModel = { prices: stack.config.cost ?? null, retention: stack.config.dataBucket.outputRetention, noncurrentDays: NONCURRENT_VERSION_DAYS };
  console.log(summary(result, (performance.now() - started) / 1000, costModel));
}

/** `--runs N --quota Q`: N runs through the emulated run queue, one progress line per run. */
async function queueMain(cli: CliOptions) {
  const runs = cli.runs ?? 1;
  const async = cli.serving === "async";
  const quota = cli.quota ?? 2;
  // The stack's cap, sized to the local quota as docs/trigger.md advises (a cap above the quota only meets ResourceLimitExceeded).
  // async: the stack's own cap (and serving.maxInstances) unless --quota says otherwise; no transform quota applies.
  const stack = loadLocalStack(cli.stack, { cascadeSteps: cli.cascadeSteps, ...(async && cli.quota === undefined ? {} : { maxConcurrentJobs: quota }), ...(async ? { serving: "async" as const } : {}) });
  const workDir = cli.workDir ?? resolve("local-run", `queue-${new Date().toISOString().replace(/[-:]/g, "").slice(0, 15)}`);
  const steps = stack.config.forecast.cascadeSteps.reduce((a, b) => a + b, 0);
  console.log(`FuXi local run queue: ${runs} runs from ${runIdFor(cli.initTime)} every 6 h, account quota ${quota}, cap ${stack.config.transform.maxConcurrentJobs}, ${steps} steps each, grid ${cli.grid.lat}×${cli.grid.lon}`);
  console.log("  queue     SQS emulated in-process (tools/local-sqs.ts) with Lambda's event source mapping; the dispatcher is the real trigger Lambda handler");
  if (async) console.log(`  serving   async endpoint ${stack.config.transform.jobNamePrefix}-async emulated on loopback (local/async-endpoint-runner.ts): at most ${stack.config.serving.maxInstances} instance(s), scaled to zero, an instance stops after ${cli.idleSeconds} s idle`);
  console.log(`  workdir   ${workDir}`);
  const multibar = new MultiBar({ format: "  {runId} |{bar}| {value}/{total} {state} {job}", hideCursor: true, noTTYOutput: true, notTTYSchedule: 5000, clearOnComplete: false }, Presets.shades_classic);
  const bars = new Map<string, ReturnType<MultiBar["create"]>>();
  const started = performance.now();
  try {
    const result = await runLocalQueue({
      stack,
      workDir,
      firstInit: cli.initTime,
      runs,
      quota,
      grid: cli.grid,
      providers: cli.providers ?? ["cpu"],
      ...(async ? { asyncServing: { idleMs: cli.idleSeconds * 1000 } } : {}),
      onEvent: (event) => {
        if (event.kind === "phase") return void multibar.log(`  ${event.phase.padEnd(9)} ${event.detail ?? ""}\n`);
        const bar = bars.get(event.runId) ?? bars.set(event.runId, multibar.create(steps, 0, { runId: event.runId, state: "queued", job: "" })).get(event.runId)!;
        if (event.kind === "run") bar.update({ state: event.state.padEnd(7), job: event.jobName ?? "" });
        else bar.update(event.done);
      },
    });
    multibar.stop();
    console.log(`\n${runs} runs through the queue in ${((performance.now() - started) / 1000).toFixed(1)} s (SYNTHETIC inputs, stand-in model)`);
    const s = (ms: number | undefined) => (ms === undefined ? "-" : `${(ms / 1000).toFixed(1)} s`);
    const span = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : b - a);
    for (const r of result.runs) {
      const start = async ? (r.warm === undefined ? "" : r.warm ? "warm " : "cold ") : "";
      console.log(`  ${r.runId}  ${r.state.padEnd(6)} ${result.serving} ${start}${r.jobName ?? "-"}  started +${s(r.startedMs)}, ended +${s(r.endedMs)}; marker→first step ${s(span(r.markerMs, r.firstStepMs))} (waited ${s(span(r.markerMs, r.startedMs))}, processing ${s(span(r.startedMs, r.endedMs))})${r.failureReason ? `  ${r.failureReason}` : ""}`);
    }
    if (async) console.log(`  async endpoint: ${result.modelLoads} model load(s) for ${runs} run(s); ${result.runs.filter((r) => r.warm).length} run(s) started on a warm instance (no start-up, no model load)`);
    console.log(`  at most ${result.maxInProgress} ${async ? "invocation(s)" : "job(s)"} InProgress (cap ${stack.config.transform.maxConcurrentJobs}), dead-letter queue ${result.deadLetters}${async ? "" : `, CreateTransformJob refusals ${result.createRejections}`}`);
    console.log(`  logs       ${join(result.logDir, "trigger.log")}, ${join(result.logDir, "runtime.log")}`);
    if (result.runs.some((r) => r.state !== "done")) process.exitCode = 1;
  } catch (error) {
    multibar.stop();
    console.error(`\nlocal queue run failed: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}

const MB = 1024 * 1024;

const PHASE_NAMES: Record<string, string> = {
  standinModelsMs: "models",
  syntheticInputMs: "input",
  uploadAndTriggerMs: "upload+trigger",
  transformJobMs: "job",
  downloadMs: "copy",
  quicklookMs: "maps",
};

function phases(timings: Record<string, number>): string {
  return Object.entries(PHASE_NAMES)
    .filter(([key]) => timings[key] !== undefined)
    .map(([key, name]) => `${name} ${(timings[key] / 1000).toFixed(1)} s`)
    .join(", ");
}

/** What the run used and, with `fuxi:cost` in the stack file, what it would cost on that instance in the cloud. */
function usageLine(r: LocalRunResult, costModel: Pick<CostModel, "prices" | "retention" | "noncurrentDays">): string {
  const job = r.jobs[0];
  const u = r.manifest.usage;
  const { runs } = priceRuns([{ transformStartTime: job?.transformStartTime, transformEndTime: job?.transformEndTime, instanceType: job?.request.TransformResources.InstanceType, instanceCount: job?.request.TransformResources.InstanceCount, usage: u }], costModel);
  const run = runs[0]!;
  const time = run.source === "sagemaker" ? `${run.seconds!.toFixed(1)} s TransformStartTime → TransformEndTime (the runtime saw ${u.visibleSeconds.toFixed(1)} s)` : `${u.visibleSeconds.toFixed(1)} s seen by the runtime`;
  return `  usage      ${run.instanceType ?? "?"} × ${run.instanceCount}: ${time}, ${formatBytes(u.bytesWritten)} written; ${run.cost ? formatMoney(run.cost.total) : "cost unknown"}`;
}

export function summary(r: LocalRunResult, wallSeconds: number, costModel: Pick<CostModel, "prices" | "retention" | "noncurrentDays"> = { prices: null, noncurrentDays: NONCURRENT_VERSION_DAYS }): string {
  const m = r.manifest;
  const steps = m.files.filter((f) => /^\d{3}\.nc$/.test(f.file));
  const totalBytes = steps.reduce((sum, f) => sum + f.bytes, 0);
  const median = (values: (number | undefined)[]) => {
    const v = values.filter((x): x is number => typeof x === "number").sort((a, b) => a - b);
    return v.length ? v[Math.floor(v.length / 2)] : NaN;
  };
  const job = r.jobs[0];
  const jobSeconds = job?.transformEndTime && job.creationTime ? (job.transformEndTime.getTime() - job.creationTime.getTime()) / 1000 : NaN;
  const label = [r.synthetic ? "SYNTHETIC input" : undefined, r.standinModels ? "stand-in model, not a forecast" : undefined].filter(Boolean).join(", ");
  const lines = [
    "",
    `Run ${r.runId} done in ${wallSeconds.toFixed(1)} s${label ? ` (${label})` : ""}`,
    `  job        ${m.jobName} Completed in ${jobSeconds.toFixed(1)} s (runtime wall ${(m.wallMs / 1000).toFixed(1)} s, providers ${m.providers.join(",")})`,
    `  forecast   init ${m.initTime}, ${m.steps} steps +${steps[0]?.lead ?? "?"} h … +${steps[steps.length - 1]?.lead ?? "?"} h, cascade [${m.cascadeSteps.join(", ")}], grid ${m.grid.lat}×${m.grid.lon}, compression ${m.compression}`,
    `  files      ${steps.length} × ${(totalBytes / steps.length / MB).toFixed(1)} MB = ${(totalBytes / MB).toFixed(1)} MB, plus _SUCCESS (manifest) and _transform/${m.jobName}.json.out`,
    usageLine(r, costModel),
    `  per step   run ${median(steps.map((f) => f.runMs)).toFixed(0)} ms, encode ${median(steps.map((f) => f.encodeMs)).toFixed(0)} ms, upload ${median(steps.map((f) => f.uploadMs)).toFixed(0)} ms (medians from the manifest)`,
    `  phases     ${phases(r.timingsMs)}`,
    `  outputs    ${r.outputUri}  (s3rver data: ${r.s3DataDir}; it stops with this command)`,
    `  copied to  ${r.outputFolder}`,
  ];
  if (r.quicklooks.length > 0) lines.push(`  maps       ${r.quicklooks.length} PNGs in ${r.quicklookFolder}`);
  lines.push(`  logs       ${join(r.logDir, "runtime.log")}, ${join(r.logDir, "trigger.log")}`);
  lines.push(`  maps again npm run quicklook -- ${r.outputFolder}`);
  return lines.join("\n");
}

if (require.main === module) void main();
