/**
 * One status line per run, from S3 (markers, request objects, step files, manifests, _FAILED.json),
 * SageMaker (this stack's jobs, ListTransformJobs by the run's name part) and the queues.
 */
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { DescribeTransformJobCommand, ListTransformJobsCommand, SageMakerClient, type TransformJobSummary } from "@aws-sdk/client-sagemaker";
import { billedUsage, formatBytes, formatMoney, priceRuns, type CostModel, type ObservedRun } from "../cost";
import { sanitiseRunId, type RunUsage } from "../runtime/src/contract";
import type { StackOutputs } from "./stack-outputs";
import { failureKey, invocationRecordsPrefix, resultKey, type InvocationRecord } from "../trigger/async-job-control";

export type RunState = "queued" | "running" | "done" | "failed";

export interface RunStatus {
  runId: string;
  /** Which serving mode served (or will serve) the run. */
  serving: "batch" | "async";
  markerAt?: Date;
  state: RunState;
  jobName?: string;
  jobStatus?: string;
  stepsWritten: number;
  stepsExpected?: number;
  /** Seconds from the marker to the job's creation (or the invocation): the time it waited in the queue. */
  queuedSeconds?: number;
  wallSeconds?: number;
  reason?: string;
  /** What the run is priced from: the job's billed start and end (SageMaker) and the manifest's usage. */
  observed: ObservedRun;
}

export interface StatusClients {
  s3: S3Client;
  sageMaker: SageMakerClient;
  now?: () => Date;
}

async function getJson(s3: S3Client, bucket: string, key: string): Promise<Record<string, unknown> | undefined> {
  try {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return JSON.parse(await got.Body!.transformToString()) as Record<string, unknown>;
  } catch (error) {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === "NoSuchKey" || e.$metadata?.httpStatusCode === 404) return undefined;
    if (error instanceof SyntaxError) return undefined;
    throw error;
  }
}

async function listAll(s3: S3Client, bucket: string, prefix: string, delimiter?: string) {
  const keys: { key: string; lastModified?: Date; eTag?: string }[] = [];
  const prefixes: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.push({ key: o.Key!, lastModified: o.LastModified, eTag: o.ETag });
    for (const p of page.CommonPrefixes ?? []) prefixes.push(p.Prefix!);
    token = page.NextContinuationToken;
  } while (token);
  return { keys, prefixes };
}

/** Run ids under the input prefix (folders), optionally only those whose marker is newer than `since`. */
export async function listRunIds(s3: S3Client, out: StackOutputs, since?: Date): Promise<{ runId: string; markerAt?: Date }[]> {
  const { prefixes } = await listAll(s3, out.dataBucket, out.inputPrefix, "/");
  const runs: { runId: string; markerAt?: Date }[] = [];
  for (const p of prefixes) {
    const runId = p.slice(out.inputPrefix.length, -1);
    let markerAt: Date | undefined;
    try {
      markerAt = (await s3.send(new HeadObjectCommand({ Bucket: out.dataBucket, Key: `${p}_SUCCESS` }))).LastModified;
    } catch {
      markerAt = undefined;
    }
    if (since && (!markerAt || markerAt < since)) continue;
    runs.push({ runId, ...(markerAt ? { markerAt } : {}) });
  }
  return runs;
}

/** What the names of one run's jobs start with: `<prefix>-[<sanitised runId>-]`. */
function jobNameStem(out: StackOutputs, runId: string): string {
  const middle = sanitiseRunId(runId, 63 - out.jobNamePrefix.length - 10);
  return middle ? `${out.jobNamePrefix}-${middle}-` : `${out.jobNamePrefix}-`;
}

/** Job names of the stack (no runId given) or of one run: `<prefix>-[<sanitised runId>-]<8 hex>`. */
function jobNamePattern(out: StackOutputs, runId?: string): RegExp {
  const escape = (text: string) => text.replace(/[-]/g, "\\-");
  if (runId === undefined) return new RegExp(`^${escape(`${out.jobNamePrefix}-`)}([a-z0-9-]*\\-)?[0-9a-f]{8}$`, "i");
  return new RegExp(`^${escape(jobNameStem(out, runId))}[0-9a-f]{8}$`, "i");
}

/** The stack's jobs whose name carries this runId, newest first. */
async function jobsOf(sageMaker: SageMakerClient, out: StackOutputs, runId: string): Promise<TransformJobSummary[]> {
  const contains = jobNameStem(out, runId);
  const page = await sageMaker.send(new ListTransformJobsCommand({ NameContains: contains, SortBy: "CreationTime", SortOrder: "Descending", MaxResults: 20 }));
  const pattern = jobNamePattern(out, runId);
  return (page.TransformJobSummaries ?? []).filter((j) => pattern.test(j.TransformJobName ?? ""));
}

/**
 * The job's billed window and instances: Batch Transform bills TransformStartTime → TransformEndTime
 * (provisioning included, which the container cannot see); ListTransformJobs does not return them.
 */
async function billedWindow(sageMaker: SageMakerClient, jobName: string): Promise<Pick<ObservedRun, "transformStartTime" | "transformEndTime" | "instanceType" | "instanceCount">> {
  const job = await sageMaker.send(new DescribeTransformJobCommand({ TransformJobName: jobName }));
  return {
    ...(job.TransformStartTime ? { transformStartTime: new Date(job.TransformStartTime) } : {}),
    ...(job.TransformEndTime ? { transformEndTime: new Date(job.TransformEndTime) } : {}),
    ...(job.TransformResources?.InstanceType ? { instanceType: job.TransformResources.InstanceType } : {}),
    ...(job.TransformResources?.InstanceCount ? { instanceCount: job.TransformResources.InstanceCount } : {}),
  };
}

/**
 * serving.mode "async": one invocation (its record in `<requests>_async/`) as a job summary: InProgress
 * until the endpoint wrote `<id>.out` (Completed) or `<id>-error.out` (Failed). CreationTime is the
 * invocation, TransformEndTime the outcome's write. undefined: a claim not invoked yet.
 */
async function invocationSummary(s3: S3Client, out: StackOutputs, key: string, jobName: string): Promise<TransformJobSummary | undefined> {
  const record = (await getJson(s3, out.dataBucket, key)) as InvocationRecord | undefined;
  if (!record?.invokedAt) return undefined;
  const head = async (k: string) => s3.send(new HeadObjectCommand({ Bucket: out.dataBucket, Key: k })).then((h) => h.LastModified, () => undefined);
  const id = record.inferenceId ?? jobName;
  const [done, failedAt] = await Promise.all([head(resultKey(out.outputPrefix, id)), head(failureKey(out.outputPrefix, id))]);
  return {
    TransformJobName: jobName,
    TransformJobArn: undefined,
    CreationTime: new Date(record.invokedAt),
    TransformJobStatus: done ? "Completed" : failedAt ? "Failed" : "InProgress",
    ...(done ?? failedAt ? { TransformEndTime: done ?? failedAt } : {}),
    ...(failedAt && !done ? { FailureReason: `the endpoint wrote ${failureKey(out.outputPrefix, id)}` } : {}),
  };
}

/** Invocation records whose job name matches, last written first (a record is rewritten when its run is invoked). */
async function invocationRecords(s3: S3Client, out: StackOutputs, name: RegExp): Promise<{ key: string; jobName: string }[]> {
  const prefix = invocationRecordsPrefix(out.requestsPrefix);
  const { keys } = await listAll(s3, out.dataBucket, prefix);
  return keys
    .map(({ key, lastModified }) => ({ key, jobName: key.slice(prefix.length).replace(/\.json$/, ""), at: lastModified?.getTime() ?? 0 }))
    .filter((r) => name.test(r.jobName))
    .sort((a, b) => b.at - a.at)
    .map(({ key, jobName }) => ({ key, jobName }));
}

/** serving.mode "async": the run's invocations as job summaries, newest first. */
async function invocationsOf(s3: S3Client, out: StackOutputs, runId: string): Promise<TransformJobSummary[]> {
  const summaries: TransformJobSummary[] = [];
  for (const { key, jobName } of await invocationRecords(s3, out, jobNamePattern(out, runId))) {
    const summary = await invocationSummary(s3, out, key, jobName);
    if (summary) summaries.push(summary);
  }
  return summaries.sort((a, b) => b.CreationTime!.getTime() - a.CreationTime!.getTime());
}

/** What a run is priced from in its `_SUCCESS` manifest: its usage (cost.ts `billedUsage` reads it). */
function manifestObservation(manifest: Record<string, unknown> | undefined, serving: "batch" | "async"): ObservedRun {
  const usage = manifest?.usage as RunUsage | undefined;
  return {
    serving,
    ...(usage && typeof usage.visibleSeconds === "number" ? { usage: { visibleSeconds: usage.visibleSeconds, bytesWritten: usage.bytesStored ?? usage.bytesWritten ?? 0, instanceType: usage.instanceType, instanceCount: usage.instanceCount, invocationStartedAt: usage.invocationStartedAt, invocationEndedAt: usage.invocationEndedAt } } : {}),
  };
}

/**
 * serving.mode "async": processing seconds (the manifest's invocationStartedAt → invocationEndedAt, as
 * `runs` prices them) of the stack's latest `limit` completed invocations, newest first. An invocation
 * whose run's manifest names another job (the run was redone since, or the invocation returned an
 * earlier manifest) or has no usage is looked at but not measured.
 */
export async function measuredInvocationSeconds(s3: S3Client, out: StackOutputs, limit: number): Promise<number[]> {
  const seconds: number[] = [];
  let completed = 0;
  for (const { key, jobName } of await invocationRecords(s3, out, jobNamePattern(out))) {
    if (completed >= limit) break;
    if ((await invocationSummary(s3, out, key, jobName))?.TransformJobStatus !== "Completed") continue;
    completed++;
    const request = await getJson(s3, out.dataBucket, `${out.requestsPrefix}${jobName}.json`);
    if (typeof request?.runId !== "string") continue;
    const manifest = await getJson(s3, out.dataBucket, `${out.outputPrefix}${request.runId}/_SUCCESS`);
    if (manifest?.jobName !== jobName) continue;
    const usage = billedUsage(manifestObservation(manifest, "async"));
    if (usage.source === "invocation" && usage.seconds !== undefined) seconds.push(usage.seconds);
  }
  return seconds;
}

export async function runStatus(c: StatusClients, out: StackOutputs, run: { runId: string; markerAt?: Date }): Promise<RunStatus> {
  const now = (c.now ?? (() => new Date()))();
  const serving = out.servingMode ?? "batch";
  const outputFolder = `${out.outputPrefix}${run.runId}/`;
  const [outputs, manifest, failed, jobs] = await Promise.all([
    listAll(c.s3, out.dataBucket, outputFolder),
    getJson(c.s3, out.dataBucket, `${outputFolder}_SUCCESS`),
    getJson(c.s3, out.dataBucket, `${outputFolder}_FAILED.json`),
    serving === "async" ? invocationsOf(c.s3, out, run.runId) : jobsOf(c.sageMaker, out, run.runId),
  ]);
  const stepsWritten = outputs.keys.filter((k) => /^\d{3}\.nc$/.test(k.key.slice(outputFolder.length))).length;
  const job = jobs[0];
  let stepsExpected: number | undefined = typeof manifest?.steps === "number" ? manifest.steps : undefined;
  if (stepsExpected === undefined && job?.TransformJobName) {
    const request = await getJson(c.s3, out.dataBucket, `${out.requestsPrefix}${job.TransformJobName}.json`);
    if (Array.isArray(request?.cascadeSteps)) stepsExpected = (request!.cascadeSteps as number[]).reduce((a, b) => a + b, 0);
  }
  const observed: ObservedRun = {
    ...manifestObservation(manifest, serving),
    // async: the endpoint's instance time is not per run (warm windows, shared instances): the invocation's processing time prices it.
    ...(job?.TransformJobName && serving === "batch" ? await billedWindow(c.sageMaker, job.TransformJobName) : {}),
  };
  const base = { runId: run.runId, serving, ...(run.markerAt ? { markerAt: run.markerAt } : {}), stepsWritten, ...(stepsExpected !== undefined ? { stepsExpected } : {}), observed };
  const failedAt = typeof failed?.failedAt === "string" ? new Date(failed.failedAt) : undefined;
  if (job) {
    const created = job.CreationTime ? new Date(job.CreationTime) : undefined;
    const ended = job.TransformEndTime ? new Date(job.TransformEndTime) : undefined;
    const wallSeconds = created ? Math.round(((ended ?? now).getTime() - created.getTime()) / 1000) : undefined;
    const state: RunState = job.TransformJobStatus === "InProgress" || job.TransformJobStatus === "Stopping" ? "running" : job.TransformJobStatus === "Completed" && manifest ? "done" : "failed";
    const reason = state === "failed" ? job.FailureReason ?? (job.TransformJobStatus === "Completed" ? "job Completed but no _SUCCESS manifest" : job.TransformJobStatus) : undefined;
    const queuedSeconds = created && run.markerAt ? Math.max(0, Math.round((created.getTime() - run.markerAt.getTime()) / 1000)) : undefined;
    return { ...base, state, jobName: job.TransformJobName, jobStatus: job.TransformJobStatus, ...(wallSeconds !== undefined ? { wallSeconds } : {}), ...(queuedSeconds !== undefined ? { queuedSeconds } : {}), ...(reason ? { reason } : {}) };
  }
  if (failed && (!run.markerAt || !failedAt || failedAt >= run.markerAt)) return { ...base, state: "failed", reason: String(failed.reason ?? "see _FAILED.json") };
  if (manifest) return { ...base, state: "done" };
  return { ...base, state: "queued" };
}

/** runId, state, job and status, steps, wall time: fixed-width columns. */
function statusColumns(s: RunStatus): string {
  const steps = `${s.stepsWritten}/${s.stepsExpected ?? "?"} steps`;
  const wall = s.wallSeconds !== undefined ? `${Math.floor(s.wallSeconds / 60)}m${String(s.wallSeconds % 60).padStart(2, "0")}s` : "-";
  const job = s.jobName ? `${s.jobName} ${s.jobStatus}` : "-";
  const queued = s.queuedSeconds !== undefined ? `${Math.floor(s.queuedSeconds / 60)}m${String(s.queuedSeconds % 60).padStart(2, "0")}s` : "-";
  return [s.runId.padEnd(12), s.state.padEnd(7), s.serving.padEnd(5), job.padEnd(52), steps.padEnd(13), queued.padStart(8), wall.padStart(8)].join(" ");
}

export function formatStatus(s: RunStatus): string {
  return `${statusColumns(s)}${s.reason ? `  ${s.reason}` : ""}`.trimEnd();
}

const NO_NUMBER = "-";

/**
 * The `runs` table: a header, one line per run with its billed GPU minutes, output size and cost, and
 * a totals line. GPU minutes are SageMaker's billed window where the job has one; otherwise the
 * runtime's visible part (marked "≥": provisioning and image pull are not in it). An async run's are
 * its processing time, priced at fuxi:cost.endpointInstanceHour; the endpoint's warm windows, start-ups
 * and idle minutes before scale-in are billed apart, and the totals line says so.
 */
export function formatRunsTable(statuses: readonly RunStatus[], costModel: CostModel | undefined): string[] {
  const priced = priceRuns(statuses.map((s) => s.observed), costModel ?? { prices: null, noncurrentDays: 0 });
  const lines = [`${"runId".padEnd(12)} ${"state".padEnd(7)} ${"mode".padEnd(5)} ${"job".padEnd(52)} ${"steps".padEnd(13)} ${"queued".padStart(8)} ${"wall".padStart(8)} ${"GPU min".padStart(9)} ${"output".padStart(10)} ${"cost".padStart(14)}`];
  statuses.forEach((s, i) => {
    const p = priced.runs[i]!;
    const gpu = p.gpuMinutes === undefined ? NO_NUMBER : `${p.source === "manifest" ? "≥" : ""}${p.gpuMinutes.toFixed(1)}`;
    const bytes = p.bytesWritten > 0 ? formatBytes(p.bytesWritten) : NO_NUMBER;
    const cost = !costModel?.prices ? NO_NUMBER : p.cost ? formatMoney(p.cost.total) : NO_NUMBER;
    lines.push(`${statusColumns(s)} ${gpu.padStart(9)} ${bytes.padStart(10)} ${cost.padStart(14)}${s.reason ? `  ${s.reason}` : ""}`);
  });
  const t = priced.totals;
  const notes = [
    t.lowerBoundRuns > 0 ? `${t.lowerBoundRuns} run(s) counted with the runtime's visible time only (no SageMaker times yet), a lower bound` : "",
    t.unknownRuns > 0 ? `${t.unknownRuns} run(s) with no time yet` : "",
    t.asyncRuns > 0 ? `${t.asyncRuns} async run(s) counted with their processing time at the endpoint price; the endpoint's warm windows, start-ups and idle minutes before scale-in are billed separately (pulumi stack output steadyStateStorage: perDay.warm)` : "",
  ].filter(Boolean);
  const cost = costModel === undefined ? "cost unknown: the stack has no costModel output (redeploy it)" : formatMoney(t.cost);
  lines.push(`total: ${t.gpuMinutes.toFixed(1)} GPU minutes, ${formatBytes(t.bytesWritten)} of output, ${cost}${notes.length ? ` (${notes.join("; ")})` : ""}`);
  return lines;
}
