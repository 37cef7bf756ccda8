import { S3Client } from "@aws-sdk/client-s3";
import { CreateTransformJobCommand, SageMakerClient } from "@aws-sdk/client-sagemaker";
import { readTriggerEnv, TriggerConfig, TriggerEnvError } from "./env";
import { classifyRecord, isTestEvent, Marker, S3Event, S3TestEvent } from "./event";
import { describeError, isAlreadyExistsError, isTransientAwsError } from "./errors";
import { failedKey, inputFolderKey, outputFolderKey, requestKey, transformJobName, type ForecastRequest } from "../runtime/src/contract";
import { createTriggerLogger, TriggerLogger } from "./log";
import { buildCreateTransformJobInput, buildForecastRequest, eventIdentity, s3Uri } from "./request";
import { listRunFolder, objectExists, putJson } from "./s3-io";

export type { S3Event, S3TestEvent } from "./event";

/** What happened to one record; `decision` is also the `decision` field of its log line. */
export type RecordOutcome =
  | { record: number; decision: "skipped" | "invalid"; reason: string; key?: string }
  | { record: number; decision: "rejected"; key: string; runId: string; jobName: string; reason: string; failedKey: string }
  | { record: number; decision: "started" | "duplicate"; key: string; runId: string; jobName: string; requestKey: string }
  | { record: number; decision: "failed" | "retry"; key: string; runId: string; jobName?: string; error: ReturnType<typeof describeError> };

export interface TriggerResult {
  outcomes: RecordOutcome[];
}

/** Thrown after all records were handled when at least one hit a transient fault, so Lambda retries the event. */
export class TriggerRetryError extends Error {
  constructor(readonly outcomes: RecordOutcome[]) {
    const retried = outcomes.filter((o) => o.decision === "retry");
    super(
      `transient AWS errors on ${retried.length} record(s), the event will be retried: ` +
        retried.map((o) => (o.decision === "retry" ? `${o.key}: ${o.error.name}: ${o.error.message}` : "")).join("; "),
    );
    this.name = "TriggerRetryError";
  }
}

export interface TriggerDeps {
  /** Read at every invocation (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Default: new clients per invocation, so endpoint variables set after import count. */
  s3?: S3Client;
  sageMaker?: SageMakerClient;
  logger?: TriggerLogger;
  now?: () => Date;
}

interface Invocation {
  config: TriggerConfig;
  s3: S3Client;
  sageMaker: SageMakerClient;
  log: TriggerLogger;
  now: () => Date;
}

export function createTriggerHandler(deps: TriggerDeps = {}) {
  let defaultLogger: TriggerLogger | undefined;
  return async function handle(event: S3Event | S3TestEvent, context?: { awsRequestId?: string }): Promise<TriggerResult> {
    const baseLogger = deps.logger ?? (defaultLogger ??= createTriggerLogger());
    const log = context?.awsRequestId ? baseLogger.child({ awsRequestId: context.awsRequestId }) : baseLogger;
    let config: TriggerConfig;
    try {
      config = readTriggerEnv(deps.env ?? process.env);
    } catch (error) {
      // Thrown so the event ends in the failure queue and can be replayed once the stack is fixed.
      log.error({ decision: "invalid-config", faults: error instanceof TriggerEnvError ? error.faults : [String(error)] }, "trigger environment is invalid");
      throw error;
    }
    if (isTestEvent(event)) {
      log.info({ decision: "skipped", reason: "s3:TestEvent", bucket: event.Bucket }, "S3 test event, nothing to do");
      return { outcomes: [] };
    }
    const records: unknown = (event as { Records?: unknown }).Records;
    if (!Array.isArray(records)) {
      log.error({ decision: "invalid", reason: "event has no Records array" }, "not an S3 event notification");
      return { outcomes: [] };
    }
    const s3 = deps.s3 ?? new S3Client({ forcePathStyle: config.s3ForcePathStyle });
    const sageMaker = deps.sageMaker ?? new SageMakerClient({});
    const invocation: Invocation = { config, s3, sageMaker, log, now: deps.now ?? (() => new Date()) };
    try {
      const outcomes: RecordOutcome[] = [];
      for (const [index, record] of records.entries()) outcomes.push(await handleRecord(invocation, index, record));
      if (outcomes.some((o) => o.decision === "retry")) throw new TriggerRetryError(outcomes);
      return { outcomes };
    } finally {
      if (!deps.s3) s3.destroy();
      if (!deps.sageMaker) sageMaker.destroy();
    }
  };
}

/** The Lambda entry point (`index.handler` in the bundle). */
export const handler = createTriggerHandler();

async function handleRecord(inv: Invocation, index: number, record: unknown): Promise<RecordOutcome> {
  const verdict = classifyRecord(record, inv.config.dataBucket, inv.config.inputPrefix);
  if (verdict.kind === "skip") {
    inv.log.info({ decision: "skipped", record: index, key: verdict.key, reason: verdict.reason }, "record skipped");
    return { record: index, decision: "skipped", reason: verdict.reason, ...(verdict.key !== undefined ? { key: verdict.key } : {}) };
  }
  if (verdict.kind === "invalid") {
    inv.log.error({ decision: "invalid", record: index, key: verdict.key, reason: verdict.reason, event: record }, "record cannot be used");
    return { record: index, decision: "invalid", reason: verdict.reason, ...(verdict.key !== undefined ? { key: verdict.key } : {}) };
  }
  const marker = verdict.marker;
  const jobName = transformJobName(inv.config.jobNamePrefix, marker.runId, marker);
  try {
    return await startRun(inv, index, marker, jobName);
  } catch (error) {
    const transient = isTransientAwsError(error);
    const decision = transient ? "retry" : "failed";
    inv.log.error(
      { decision, record: index, key: marker.key, runId: marker.runId, jobName, error: describeError(error) },
      transient ? "transient AWS error, the event will be retried" : "permanent AWS error, the run was not started",
    );
    return { record: index, decision, key: marker.key, runId: marker.runId, jobName, error: describeError(error) };
  }
}

async function startRun(inv: Invocation, index: number, marker: Marker, jobName: string): Promise<RecordOutcome> {
  const { config, log } = inv;
  const where = { record: index, key: marker.key, runId: marker.runId, jobName };
  const reqKey = requestKey(config.requestsPrefix, jobName);
  const failedMarkerKey = failedKey(outputFolderKey(config.outputPrefix, marker.runId));
  // A request object for this name means an earlier delivery of the same upload already checked the
  // folder: go straight to CreateTransformJob, which is idempotent by name.
  let request: ForecastRequest | undefined;
  if (!(await objectExists(inv.s3, marker.bucket, reqKey))) {
    const folder = inputFolderKey(config.inputPrefix, marker.runId);
    const listing = await listRunFolder(inv.s3, marker.bucket, folder);
    if (listing.ncKeys.length !== 1) {
      const reason = `expected exactly one .nc object directly under ${s3Uri(marker.bucket, folder)}, found ${listing.ncKeys.length}`;
      await putJson(inv.s3, marker.bucket, failedMarkerKey, {
        version: 1,
        stage: "input-folder",
        runId: marker.runId,
        jobName,
        reason,
        expected: `exactly one <name>.nc directly under ${s3Uri(marker.bucket, folder)}`,
        found: {
          ncObjects: listing.ncKeys.slice(0, 100).map((key) => s3Uri(marker.bucket, key)),
          ncObjectCount: listing.ncKeys.length,
          objectCount: listing.objectCount,
        },
        event: eventIdentity(marker),
        failedAt: inv.now().toISOString(),
      });
      log.warn({ decision: "rejected", ...where, reason, ncObjectCount: listing.ncKeys.length, objectCount: listing.objectCount, failedKey: failedMarkerKey }, "run folder rejected, no job started");
      return { decision: "rejected", ...where, reason, failedKey: failedMarkerKey };
    }
    request = buildForecastRequest(config, marker, jobName, listing.ncKeys[0], inv.now());
    await putJson(inv.s3, marker.bucket, reqKey, request);
  }
  const input = buildCreateTransformJobInput(config, marker.bucket, jobName, marker.runId);
  try {
    await inv.sageMaker.send(new CreateTransformJobCommand(input));
  } catch (error) {
    if (isAlreadyExistsError(error)) {
      log.info({ decision: "duplicate", ...where, requestKey: reqKey }, "transform job already exists: duplicate delivery");
      return { decision: "duplicate", ...where, requestKey: reqKey };
    }
    if (isTransientAwsError(error)) throw error;
    log.error({ decision: "failed", ...where, error: describeError(error), requestKey: reqKey, request, createTransformJob: input, failedKey: failedMarkerKey }, "CreateTransformJob rejected the job");
    await putJson(inv.s3, marker.bucket, failedMarkerKey, {
      version: 1,
      stage: "create-transform-job",
      runId: marker.runId,
      jobName,
      reason: `CreateTransformJob rejected the job: ${describeError(error).name}: ${describeError(error).message}`,
      expected: "SageMaker accepts the transform job",
      found: { error: describeError(error) },
      event: eventIdentity(marker),
      failedAt: inv.now().toISOString(),
    });
    return { decision: "failed", ...where, error: describeError(error) };
  }
  log.info({ decision: "started", ...where, requestKey: reqKey, request }, "transform job started");
  return { decision: "started", ...where, requestKey: reqKey };
}
