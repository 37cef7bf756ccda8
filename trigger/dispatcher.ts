/**
 * The dispatcher: one run-queue message in, one decision out (start, wait, done, dead-letter).
 * A run waits in its queue (the message is made visible again later) while its input is late or
 * its lane is full, and goes to the dead-letter queue only after the lane's maximum wait; every run
 * that will not start gets `_FAILED.json` and a RunsNotStarted metric (the alarm watches it).
 */
import { admit, type AdmissionCache } from "./admission";
import type { TriggerConfig } from "./env";
import { describeError, isAlreadyExistsError, isTransientAwsError } from "./errors";
import { failedKey as failedKeyIn, inputFolderKey, matchMarkerKey, outputFolderKey, requestKey, transformJobName } from "../runtime/src/contract";
import { classifyRecord, type Marker } from "./event";
import type { TriggerLogger } from "./log";
import type { DeadLetter, JobControl, MetricName, QueueControl, RunStore } from "./ports";
import { backfillMarker, parseQueueBody, type Lane } from "./queue-message";
import { buildCreateTransformJobInput, buildForecastRequest, eventIdentity, s3Uri } from "./request";

/** Late inputs are looked for again this often (or less often, see `waitDelaySeconds`). */
export const INPUT_RECHECK_SECONDS = 30;
/**
 * Past its maximum wait a run still waits while the stack is working through a backlog (a job of the
 * stack started within the progress window), but never longer than this: the queues keep messages
 * 14 days (SQS's longest retention).
 */
export const HARD_MAX_WAIT_SECONDS = 13 * 24 * 3600;
/** SQS's longest visibility timeout. */
const MAX_VISIBILITY_SECONDS = 12 * 3600;

export interface QueueMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  queueUrl: string;
  /** When the run entered the queue (SentTimestamp, or the `fuxi-enqueued-at` attribute of a requeued copy): the wait is measured from here. */
  sentAt: Date;
  /** SQS ApproximateReceiveCount, this receive included. */
  receiveCount: number;
}

export type RunDecision = "started" | "duplicate" | "skipped" | "waiting" | "retry" | "rejected" | "failed" | "expired" | "invalid";

export interface RunOutcome {
  decision: RunDecision;
  lane: Lane;
  runId?: string;
  jobName?: string;
  key?: string;
  reason?: string;
  /** Failure stage written to `_FAILED.json`. */
  stage?: FailureStage;
  error?: ReturnType<typeof describeError>;
  waitSeconds?: number;
}

export type MessageAction =
  | { kind: "done" }
  | { kind: "retry"; delaySeconds: number }
  /** A long wait near the redrive's maxReceiveCount: a fresh copy goes back into the queue, this one is deleted. */
  | { kind: "requeue"; delaySeconds: number; letter: DeadLetter }
  | { kind: "dead"; letter: DeadLetter };

/** Message attribute carrying when the run first entered its queue, across requeues. */
export const ENQUEUED_AT_ATTRIBUTE = "fuxi-enqueued-at";
/** Receives kept in hand below maxReceiveCount before a waiting message is requeued. */
const RECEIVE_MARGIN = 20;

export interface DispatchDeps {
  config: TriggerConfig;
  store: RunStore;
  jobs: JobControl;
  queue: QueueControl;
  log: TriggerLogger;
  now: () => Date;
}

export type FailureStage = "input-folder" | "create-transform-job" | "queue-wait" | "dispatch" | "message";

/** How long a waiting message stays invisible: the base interval, but not past the end of its wait by more than a second. */
export function waitDelaySeconds(p: { baseSeconds: number; ageSeconds: number; maxWaitSeconds: number }): number {
  const remaining = p.maxWaitSeconds - p.ageSeconds;
  return Math.min(MAX_VISIBILITY_SECONDS, remaining > 0 ? Math.min(p.baseSeconds, Math.ceil(remaining) + 1) : p.baseSeconds);
}

/** A backlog counts as moving while jobs start at least this often: two of the longest job runs plus start-up. */
export function progressWindowSeconds(config: Pick<TriggerConfig, "invocationTimeoutSeconds">): number {
  return 2 * config.invocationTimeoutSeconds + 15 * 60;
}

function laneOf(config: TriggerConfig, queueUrl: string, parsedKind: string): Lane {
  if (parsedKind === "backfill") return "backfill";
  return queueUrl === config.queues.backfill ? "backfill" : "operational";
}

/** One metric data point in CloudWatch Embedded Metric Format, merged into the decision's log line. */
export function metricFields(namespace: string, stack: string, name: MetricName): Record<string, unknown> {
  return {
    _aws: { Timestamp: Date.now(), CloudWatchMetrics: [{ Namespace: namespace, Dimensions: [["Stack"]], Metrics: [{ Name: name, Unit: "Count" }] }] },
    Stack: stack,
    [name]: 1,
  };
}
export const METRICS_NAMESPACE = "FuXi";

export async function dispatchMessage(deps: DispatchDeps, cache: AdmissionCache, message: QueueMessage): Promise<{ action: MessageAction; outcomes: RunOutcome[] }> {
  const { config, log } = deps;
  const parsed = parseQueueBody(message.body);
  const lane = laneOf(config, message.queueUrl, parsed.kind);
  const where = { messageId: message.messageId, lane };
  if (parsed.kind === "test-event") {
    log.info({ decision: "skipped", ...where, reason: "s3:TestEvent" }, "S3 test event, nothing to do");
    return { action: { kind: "done" }, outcomes: [{ decision: "skipped", lane, reason: "s3:TestEvent" }] };
  }
  if (parsed.kind === "invalid") {
    log.error({ decision: "invalid", ...where, reason: parsed.reason, body: message.body.slice(0, 4096), ...metricFields(METRICS_NAMESPACE, config.stackName, "RunsNotStarted") }, "message cannot be used");
    return { action: deadLetter(message, lane, parsed.reason, "message"), outcomes: [{ decision: "invalid", lane, reason: parsed.reason }] };
  }
  const markers: Array<{ marker: Marker } | { outcome: RunOutcome }> = [];
  if (parsed.kind === "backfill") {
    const match = matchMarkerKey(parsed.message.marker.key, config.inputPrefix);
    if ("skip" in match || parsed.message.marker.bucket !== config.dataBucket) {
      const reason = "skip" in match ? match.skip : `bucket ${parsed.message.marker.bucket} is not the data bucket ${config.dataBucket}`;
      markers.push({ outcome: { decision: "invalid", lane, key: parsed.message.marker.key, reason } });
    } else markers.push({ marker: backfillMarker(parsed.message, match.runId) });
  } else {
    for (const record of parsed.records) {
      const verdict = classifyRecord(record, config.dataBucket, config.inputPrefix);
      if (verdict.kind === "marker") markers.push({ marker: verdict.marker });
      else markers.push({ outcome: { decision: verdict.kind === "skip" ? "skipped" : "invalid", lane, reason: verdict.reason, ...(verdict.key !== undefined ? { key: verdict.key } : {}) } });
    }
  }

  const outcomes: RunOutcome[] = [];
  for (const item of markers) {
    if ("outcome" in item) {
      const o = item.outcome;
      if (o.decision === "invalid") log.error({ decision: "invalid", ...where, key: o.key, reason: o.reason, ...metricFields(METRICS_NAMESPACE, config.stackName, "RunsNotStarted") }, "record cannot be used");
      else log.info({ decision: "skipped", ...where, key: o.key, reason: o.reason }, "record skipped");
      outcomes.push(o);
      continue;
    }
    outcomes.push(await dispatchRun(deps, cache, message, lane, item.marker));
  }

  // S3 sends one record per message; for several, the message waits while any of its runs waits
  // (the others are duplicates when it comes back) and is dead-lettered when any run cannot start.
  const waits = outcomes.filter((o) => o.decision === "waiting" || o.decision === "retry");
  if (waits.length > 0) {
    const delaySeconds = Math.min(...waits.map((o) => o.waitSeconds ?? config.retrySeconds));
    if (message.receiveCount < config.maxReceiveCount - RECEIVE_MARGIN) return { action: { kind: "retry", delaySeconds }, outcomes };
    return { action: { kind: "requeue", delaySeconds, letter: { body: message.body, attributes: { [ENQUEUED_AT_ATTRIBUTE]: message.sentAt.toISOString(), "fuxi-lane": lane } } }, outcomes };
  }
  const dead = outcomes.find((o) => ["rejected", "failed", "expired", "invalid"].includes(o.decision));
  if (dead) return { action: deadLetter(message, lane, dead.reason ?? dead.decision, dead.stage ?? "message", dead), outcomes };
  return { action: { kind: "done" }, outcomes };
}

function deadLetter(message: QueueMessage, lane: Lane, reason: string, stage: FailureStage, outcome?: RunOutcome): MessageAction {
  const attributes: Record<string, string> = { "fuxi-lane": lane, "fuxi-reason": reason.slice(0, 1000), "fuxi-stage": stage, "fuxi-source-queue": message.queueUrl };
  if (outcome?.runId) attributes["fuxi-run-id"] = outcome.runId;
  if (outcome?.jobName) attributes["fuxi-job-name"] = outcome.jobName;
  return { kind: "dead", letter: { body: message.body, attributes } };
}

async function dispatchRun(deps: DispatchDeps, cache: AdmissionCache, message: QueueMessage, lane: Lane, marker: Marker): Promise<RunOutcome> {
  const { config, log, store, now } = deps;
  const jobName = transformJobName(config.jobNamePrefix, marker.runId, marker);
  const base = { lane, runId: marker.runId, jobName, key: marker.key };
  const where = { messageId: message.messageId, ...base };
  const ageSeconds = (now().getTime() - message.sentAt.getTime()) / 1000;
  const maxWaitSeconds = config.maxWaitMinutes[lane] * 60;

  const fail = async (decision: "rejected" | "failed" | "expired", stage: FailureStage, reason: string, extra: Record<string, unknown> = {}, error?: unknown): Promise<RunOutcome> => {
    const failedKey = failedKeyIn(outputFolderKey(config.outputPrefix, marker.runId));
    let written = true;
    try {
      await store.putJson(failedKey, {
        version: 1,
        stage,
        runId: marker.runId,
        jobName,
        reason,
        ...extra,
        event: eventIdentity(marker),
        failedAt: now().toISOString(),
      });
    } catch (writeError) {
      written = false;
      log.error({ ...where, failedKey, error: describeError(writeError) }, "could not write _FAILED.json");
    }
    const level = decision === "rejected" ? "warn" : "error";
    log[level]({ decision, ...where, stage, reason, failedKey: written ? failedKey : undefined, ...(error ? { error: describeError(error) } : {}), ...metricFields(METRICS_NAMESPACE, config.stackName, "RunsNotStarted") }, "run not started");
    return { decision, ...base, stage, reason, ...(error ? { error: describeError(error) } : {}) };
  };

  const wait = async (why: "input" | "capacity" | "transient", reason: string, error?: unknown): Promise<RunOutcome> => {
    if (ageSeconds >= maxWaitSeconds && why !== "input") {
      const windowSeconds = progressWindowSeconds(config);
      const moving = ageSeconds < HARD_MAX_WAIT_SECONDS && why === "capacity" && (await deps.jobs.createdSince(config.jobNamePrefix, new Date(now().getTime() - windowSeconds * 1000)).catch(() => 0)) > 0;
      if (!moving) {
        const stuck = why === "capacity" ? `; no job of the stack started in the last ${Math.round(windowSeconds / 60)} min` : "";
        return fail("expired", "queue-wait", `waited ${Math.round(ageSeconds / 60)} min in the ${lane} queue (maximum ${config.maxWaitMinutes[lane]} min${stuck}): ${reason}`);
      }
    }
    const waitSeconds = waitDelaySeconds({
      baseSeconds: why === "input" ? INPUT_RECHECK_SECONDS : config.retrySeconds,
      ageSeconds,
      maxWaitSeconds: ageSeconds >= maxWaitSeconds ? HARD_MAX_WAIT_SECONDS : maxWaitSeconds,
    });
    const decision = why === "transient" ? "retry" : "waiting";
    const fields = { decision, ...where, reason, waitSeconds, receiveCount: message.receiveCount, ...(error ? { error: describeError(error) } : {}) };
    if (why === "transient") log.warn(fields, "transient fault, the run will be tried again");
    else log.info({ ...fields, ...metricFields(METRICS_NAMESPACE, config.stackName, "RunsWaiting") }, "run waits in the queue");
    return { decision, ...base, reason, waitSeconds, ...(error ? { error: describeError(error) } : {}) };
  };

  try {
    const reqKey = requestKey(config.requestsPrefix, jobName);
    // A request object for this name: an earlier delivery of the same upload already judged the folder.
    if (!(await store.exists(reqKey))) {
      const folder = inputFolderKey(config.inputPrefix, marker.runId);
      const listing = await store.listRunFolder(folder);
      const inputAgeSeconds = (now().getTime() - Date.parse(marker.eventTime)) / 1000;
      const found = `found ${listing.ncKeys.length}`;
      if (listing.ncKeys.length === 0 && !(inputAgeSeconds >= config.inputWaitMinutes * 60)) {
        return await wait("input", `no .nc under ${s3Uri(marker.bucket, folder)} yet (${Math.round(inputAgeSeconds)} s after the marker; waiting up to ${config.inputWaitMinutes} min)`);
      }
      if (listing.ncKeys.length !== 1) {
        const late = listing.ncKeys.length === 0 ? ` (${config.inputWaitMinutes} min after the marker)` : "";
        return await fail("rejected", "input-folder", `expected exactly one .nc object directly under ${s3Uri(marker.bucket, folder)}, ${found}${late}`, {
          expected: `exactly one <name>.nc directly under ${s3Uri(marker.bucket, folder)}`,
          found: { ncObjects: listing.ncKeys.slice(0, 100).map((key) => s3Uri(marker.bucket, key)), ncObjectCount: listing.ncKeys.length, objectCount: listing.objectCount },
        });
      }
      const request = buildForecastRequest(config, marker, jobName, listing.ncKeys[0], now());
      // Written once: a concurrent duplicate that got here first keeps its object.
      const created = await store.createJson(reqKey, request);
      log.info({ decision: created ? "request-written" : "request-exists", ...where, requestKey: reqKey }, created ? "request object written" : "request object was written by a concurrent delivery");
    }

    const admission = await admit(deps, cache, jobName, lane);
    if (admission.kind === "exists") {
      log.info({ decision: "duplicate", ...where }, "transform job already exists: duplicate delivery");
      return { decision: "duplicate", ...base };
    }
    if (admission.kind === "wait") return await wait("capacity", admission.reason);

    const input = buildCreateTransformJobInput(config, marker.bucket, jobName, marker.runId);
    try {
      await deps.jobs.create(input);
    } catch (error) {
      if (isAlreadyExistsError(error)) {
        log.info({ decision: "duplicate", ...where }, "transform job already exists: duplicate delivery");
        return { decision: "duplicate", ...base };
      }
      if ((error as { name?: string }).name === "ResourceLimitExceeded") return await wait("capacity", `account quota full (ResourceLimitExceeded: ${describeError(error).message})`);
      if (isTransientAwsError(error)) throw error;
      return await fail("failed", "create-transform-job", `CreateTransformJob rejected the job: ${describeError(error).name}: ${describeError(error).message}`, {
        expected: "SageMaker accepts the transform job",
        found: { error: describeError(error) },
      }, error);
    }
    log.info({ decision: "started", ...where, serving: config.serving?.mode ?? "batch", ticket: admission.kind === "admitted" ? admission.ticket : undefined, waitedSeconds: Math.round(ageSeconds), ...metricFields(METRICS_NAMESPACE, config.stackName, "RunsStarted") }, "transform job started");
    return { decision: "started", ...base };
  } catch (error) {
    if (isTransientAwsError(error)) return await wait("transient", `${describeError(error).name}: ${describeError(error).message}`, error);
    return await fail("failed", "dispatch", `permanent AWS error: ${describeError(error).name}: ${describeError(error).message}`, { found: { error: describeError(error) } }, error);
  }
}
