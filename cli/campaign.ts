/**
 * `npm run campaign -- --stack <name> --from 2024-01-01T00 --to 2024-03-31T18 --every 6h` (or `--runs a,b,c`):
 * enqueues each run whose input folder is in S3 (marker included) on the backfill queue, once. A run whose
 * `_SUCCESS` manifest matches its input (same .nc, same ETag) is skipped, so is one whose job exists;
 * re-running the command is safe (a second message for the same marker is a duplicate to the dispatcher).
 * Then shows progress (queued, running, done, failed) until every run ended; Ctrl-C leaves the campaign
 * running in the queue. `--no-wait` returns after enqueueing. Before it enqueues anything it prints the
 * number of runs, the expected GPU hours (measured from the stack's latest completed jobs, on an async
 * stack its latest completed invocations, else a stated assumption), the cost and the storage, and
 * asks (`--yes` answers).
 */
import { parseArgs } from "node:util";
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { DescribeTransformJobCommand, ListTransformJobsCommand, SageMakerClient } from "@aws-sdk/client-sagemaker";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { MultiBar, Presets } from "cli-progress";
import { assumedSecondsPerRun, campaignEstimate, expectedRunBytes, expectedSecondsPerRun, formatBytes, formatCampaignEstimate, FULL_GRID_STEP_BYTES_UNCOMPRESSED, type CostModel } from "../cost";
import type { ServingMode } from "../config";
import { transformJobName } from "../runtime/src/contract";
import { confirm } from "../tools/confirm";
import { BACKFILL_MESSAGE_KIND, type BackfillRunMessage } from "../trigger/queue-message";
import { measuredInvocationSeconds, runStatus, type RunState } from "./run-status";
import { parseDuration, readStackOutputs, type StackOutputs } from "./stack-outputs";

const USAGE = `usage: npm run campaign -- (--stack NAME | --outputs FILE.json) (--from YYYY-MM-DDTHH --to YYYY-MM-DDTHH [--every 6h] | --runs a,b,c) [--name NAME] [--no-wait] [--yes]`;

/** runIds `YYYYMMDDHH` from `from` to `to` inclusive, every `everyMs`. */
export function campaignRunIds(from: string, to: string, everyMs: number): string[] {
  const parse = (text: string, flag: string) => {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})$/.exec(text);
    const t = m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4]) : NaN;
    if (!m || new Date(t).toISOString().slice(0, 13) !== text) throw new Error(`${flag} must be a UTC time YYYY-MM-DDTHH, got ${JSON.stringify(text)}`);
    return t;
  };
  const a = parse(from, "--from");
  const b = parse(to, "--to");
  if (b < a) throw new Error(`--to ${to} is before --from ${from}`);
  const ids: string[] = [];
  for (let t = a; t <= b; t += everyMs) ids.push(new Date(t).toISOString().slice(0, 13).replace(/[-T]/g, ""));
  if (ids.length > 10_000) throw new Error(`the campaign would have ${ids.length} runs; split it (at most 10,000)`);
  return ids;
}

export type CampaignDecision = "enqueued" | "skipped-done" | "skipped-started" | "missing-input";

export interface CampaignClients {
  s3: S3Client;
  sqs: SQSClient;
}

/** The marker's identity as the dispatcher names the job: versionId on versioned buckets, else its LastModified + ETag. */
async function markerIdentity(s3: S3Client, out: StackOutputs, runId: string) {
  const key = `${out.inputPrefix}${runId}/_SUCCESS`;
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: out.dataBucket, Key: key }));
    const versionId = head.VersionId && head.VersionId !== "null" ? head.VersionId : undefined;
    const lastModified = head.LastModified ?? new Date(0);
    return { bucket: out.dataBucket, key, ...(versionId ? { versionId } : { sequencer: `campaign-${lastModified.getTime().toString(16)}-${String(head.ETag).replace(/"/g, "")}` }), eventTime: lastModified.toISOString() };
  } catch (error) {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === "NotFound" || e.$metadata?.httpStatusCode === 404) return undefined;
    throw error;
  }
}

/** True when `<output>/<runId>/_SUCCESS` was computed from the folder's current .nc (same key and ETag). */
async function manifestMatches(s3: S3Client, out: StackOutputs, runId: string): Promise<boolean> {
  let manifest: { input?: string; inputETag?: string };
  try {
    const got = await s3.send(new GetObjectCommand({ Bucket: out.dataBucket, Key: `${out.outputPrefix}${runId}/_SUCCESS` }));
    manifest = JSON.parse(await got.Body!.transformToString());
  } catch {
    return false;
  }
  const folder = `${out.inputPrefix}${runId}/`;
  const listing = await s3.send(new ListObjectsV2Command({ Bucket: out.dataBucket, Prefix: folder }));
  const inputs = (listing.Contents ?? []).filter((o) => !o.Key!.slice(folder.length).includes("/") && o.Key!.toLowerCase().endsWith(".nc"));
  if (inputs.length !== 1) return false;
  const strip = (etag?: string) => String(etag ?? "").replace(/"/g, "");
  return manifest.input === `s3://${out.dataBucket}/${inputs[0].Key}` && strip(manifest.inputETag) === strip(inputs[0].ETag);
}

export interface RunJudgement {
  decision: CampaignDecision;
  /** The backfill message to send, for a run to enqueue. */
  message?: BackfillRunMessage;
}

/** What the campaign would do with one run, without sending anything. */
export async function judgeRun(c: CampaignClients, out: StackOutputs, campaign: string, runId: string): Promise<RunJudgement> {
  const marker = await markerIdentity(c.s3, out, runId);
  if (!marker) return { decision: "missing-input" };
  if (await manifestMatches(c.s3, out, runId)) return { decision: "skipped-done" };
  const jobName = transformJobName(out.jobNamePrefix, runId, marker);
  try {
    await c.s3.send(new HeadObjectCommand({ Bucket: out.dataBucket, Key: `${out.requestsPrefix}${jobName}.json` }));
    return { decision: "skipped-started" };
  } catch {
    // No request object yet: not dispatched (or its folder was rejected); queue it.
  }
  return { decision: "enqueued", message: { kind: BACKFILL_MESSAGE_KIND, version: 1, campaign, marker } };
}

export async function sendRun(c: CampaignClients, out: StackOutputs, message: BackfillRunMessage): Promise<void> {
  await c.sqs.send(new SendMessageCommand({ QueueUrl: out.backfillQueueUrl, MessageBody: JSON.stringify(message) }));
}

export async function enqueueRun(c: CampaignClients, out: StackOutputs, campaign: string, runId: string): Promise<CampaignDecision> {
  const judged = await judgeRun(c, out, campaign, runId);
  if (judged.message) await sendRun(c, out, judged.message);
  return judged.decision;
}

/** Completed jobs (or async invocations) of the stack looked at for the expected run time. */
const MEASURED_JOBS = 20;

/**
 * batch: billed seconds (TransformEndTime − TransformStartTime) of the stack's latest completed jobs.
 * async: processing seconds of its latest completed invocations, as `npm run runs` prices them.
 */
export async function measuredRunSeconds(c: { s3: S3Client; sageMaker: SageMakerClient }, out: StackOutputs): Promise<number[]> {
  if (out.servingMode === "async") return measuredInvocationSeconds(c.s3, out, MEASURED_JOBS);
  const page = await c.sageMaker.send(new ListTransformJobsCommand({ NameContains: `${out.jobNamePrefix}-`, StatusEquals: "Completed", SortBy: "CreationTime", SortOrder: "Descending", MaxResults: MEASURED_JOBS }));
  const seconds: number[] = [];
  for (const job of page.TransformJobSummaries ?? []) {
    if (!job.TransformJobName?.startsWith(`${out.jobNamePrefix}-`)) continue;
    const d = await c.sageMaker.send(new DescribeTransformJobCommand({ TransformJobName: job.TransformJobName }));
    if (d.TransformStartTime && d.TransformEndTime) seconds.push((new Date(d.TransformEndTime).getTime() - new Date(d.TransformStartTime).getTime()) / 1000);
  }
  return seconds;
}

const MEASURED_INVOCATIONS = (n: number) => `processing time of the latest ${n} completed async invocation${n === 1 ? "" : "s"}`;

/**
 * The lines printed before the question: runs, expected GPU hours, cost and storage, each with its basis.
 * An async stack's runs are priced at the endpoint price, one instance each (one invocation per instance).
 */
export function campaignEstimateLines(runs: number, measured: readonly number[], model: CostModel | undefined, serving: ServingMode = "batch"): string[] {
  if (!model) return [`runs            ${runs}`, "estimate        none: the stack has no costModel output (redeploy it with this version of the program)"];
  const expected = expectedSecondsPerRun(measured, assumedSecondsPerRun(model.invocationTimeoutSeconds), serving === "async" ? MEASURED_INVOCATIONS : undefined);
  const bytesPerRun = expectedRunBytes(model.steps);
  const bytesBasis = `${model.steps} steps x ${formatBytes(FULL_GRID_STEP_BYTES_UNCOMPRESSED)} per step${model.compression === "none" ? "" : `, uncompressed: at most, with ${model.compression}`}`;
  const estimate = campaignEstimate({ runs, secondsPerRun: expected.seconds, secondsBasis: expected.basis, bytesPerRun, bytesBasis, instanceType: model.instanceType, instanceCount: serving === "async" ? 1 : model.instanceCount, serving, retention: model.retention, noncurrentDays: model.noncurrentDays }, model.prices ?? undefined);
  return formatCampaignEstimate(estimate, model.instanceType);
}

export async function main(argv: string[]): Promise<number> {
  let runIds: string[];
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: { stack: { type: "string" }, outputs: { type: "string" }, from: { type: "string" }, to: { type: "string" }, every: { type: "string", default: "6h" }, runs: { type: "string" }, name: { type: "string" }, "no-wait": { type: "boolean", default: false }, yes: { type: "boolean", default: false }, help: { type: "boolean", short: "h" } } }));
    if (values.help) return console.log(USAGE), 0;
    if (values.runs !== undefined) {
      if (values.from || values.to) throw new Error("--runs cannot be combined with --from/--to");
      runIds = String(values.runs).split(",").map((r) => r.trim()).filter(Boolean);
      const bad = runIds.find((r) => r.includes("/"));
      if (runIds.length === 0 || bad) throw new Error(`--runs must list run folder names separated by commas${bad ? ` (${JSON.stringify(bad)} has a "/")` : ""}`);
    } else {
      if (!values.from || !values.to) throw new Error("give --from and --to (or --runs)");
      runIds = campaignRunIds(String(values.from), String(values.to), parseDuration(String(values.every), "--every"));
    }
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  let out: StackOutputs;
  try {
    out = readStackOutputs({ stack: values.stack as string | undefined, outputsFile: values.outputs as string | undefined });
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  const campaign = String(values.name ?? `campaign-${new Date().toISOString().slice(0, 16)}`);
  const s3 = new S3Client({ forcePathStyle: process.env.S3_FORCE_PATH_STYLE === "true" });
  const sqs = new SQSClient({});
  const sageMaker = new SageMakerClient({});
  try {
    const decisions: Record<CampaignDecision, string[]> = { enqueued: [], "skipped-done": [], "skipped-started": [], "missing-input": [] };
    const messages: BackfillRunMessage[] = [];
    for (const runId of runIds) {
      const judged = await judgeRun({ s3, sqs }, out, campaign, runId);
      decisions[judged.decision].push(runId);
      if (judged.message) messages.push(judged.message);
    }
    const missing = decisions["missing-input"];
    console.log(`campaign ${campaign}: ${runIds.length} run(s): ${messages.length} to enqueue, ${decisions["skipped-done"].length} already done (manifest matches), ${decisions["skipped-started"].length} already dispatched, ${missing.length} without a marker in S3${missing.length ? ` (${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", …" : ""})` : ""}`);
    if (messages.length > 0) {
      for (const line of campaignEstimateLines(messages.length, await measuredRunSeconds({ s3, sageMaker }, out), out.costModel, out.servingMode)) console.log(`  ${line}`);
      if (!(await confirm(`Enqueue ${messages.length} run(s) on the backfill queue?`, { yes: values.yes === true }))) {
        console.log("nothing enqueued");
        return 1;
      }
      for (const message of messages) await sendRun({ s3, sqs }, out, message);
      console.log(`enqueued ${messages.length} run(s) on ${out.backfillQueueUrl}`);
    }
    const tracked = [...decisions.enqueued, ...decisions["skipped-started"]];
    if (values["no-wait"] || tracked.length === 0) return 0;
    console.log("progress (Ctrl-C stops watching; the campaign goes on in the queue):");
    const bars = new MultiBar({ format: "  {bar} {value}/{total} done | running {running} | queued {queued} | failed {failed}", hideCursor: true, noTTYOutput: true, notTTYSchedule: 10_000 }, Presets.shades_classic);
    const bar = bars.create(tracked.length, 0, { running: 0, queued: tracked.length, failed: 0 });
    let stop = false;
    process.once("SIGINT", () => (stop = true));
    const failed = new Map<string, string>();
    while (!stop) {
      const counts: Record<RunState, number> = { queued: 0, running: 0, done: 0, failed: 0 };
      for (const runId of tracked) {
        const s = await runStatus({ s3, sageMaker }, out, { runId });
        counts[s.state]++;
        if (s.state === "failed") failed.set(runId, s.reason ?? "");
      }
      bar.update(counts.done, { running: counts.running, queued: counts.queued, failed: counts.failed });
      if (counts.done + counts.failed === tracked.length) break;
      await new Promise((resolve) => setTimeout(resolve, 30_000));
    }
    bars.stop();
    for (const [runId, reason] of failed) console.log(`  failed ${runId}: ${reason}`);
    return failed.size > 0 ? 1 : 0;
  } catch (error) {
    console.error(`${(error as { name?: string }).name ?? "Error"}: ${(error as Error).message}`);
    return 1;
  } finally {
    s3.destroy();
    sqs.destroy();
    sageMaker.destroy();
  }
}

if (require.main === module) void main(process.argv.slice(2)).then((code) => (process.exitCode = code));
