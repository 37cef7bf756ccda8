/**
 * The trigger Lambda: the run queues' dispatcher. An SQS event source mapping (ReportBatchItemFailures)
 * hands it batches of run-queue messages; each is started, kept waiting (made visible again later and
 * reported as a batch item failure so it stays in its queue) or moved to the dead-letter queue.
 */
import { S3Client } from "@aws-sdk/client-s3";
import { SageMakerClient } from "@aws-sdk/client-sagemaker";
import { SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { SQSClient } from "@aws-sdk/client-sqs";
import type { AdmissionCache } from "./admission";
import { asyncEndpointJobControl } from "./async-job-control";
import { s3RunStore, sageMakerJobControl, sqsQueueControl } from "./aws-ports";
import { dispatchMessage, ENQUEUED_AT_ATTRIBUTE, type DispatchDeps, type MessageAction, type QueueMessage, type RunOutcome } from "./dispatcher";
import { readTriggerEnv, TriggerConfig, TriggerEnvError } from "./env";
import { describeError } from "./errors";
import { createTriggerLogger, TriggerLogger } from "./log";
import type { JobControl, QueueControl, RunStore } from "./ports";

export type { RunOutcome } from "./dispatcher";

/** The parts of an SQS event record the dispatcher uses. */
export interface SqsRecord {
  messageId: string;
  receiptHandle: string;
  body: string;
  attributes: { ApproximateReceiveCount: string; SentTimestamp: string; [name: string]: string };
  eventSourceARN: string;
  [field: string]: unknown;
}
export interface SqsEvent {
  Records: SqsRecord[];
}

export interface DispatchResult {
  /** What the event source mapping reads: these messages stay in their queue. */
  batchItemFailures: { itemIdentifier: string }[];
  messages: { messageId: string; action: MessageAction["kind"]; outcomes: RunOutcome[] }[];
}

export interface TriggerDeps {
  /** Read at every invocation (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Default: SDK clients created per invocation, so endpoint variables set after import count. */
  s3?: S3Client;
  sageMaker?: SageMakerClient;
  /** serving.mode "async": InvokeEndpointAsync goes through this client. */
  sageMakerRuntime?: SageMakerRuntimeClient;
  sqs?: SQSClient;
  /** Replace the SDK-backed ports (the simulated-clock benchmark). */
  ports?: { store: RunStore; jobs: JobControl; queue: QueueControl };
  logger?: TriggerLogger;
  now?: () => Date;
}

/** The queue a record came from: its URL is the configured one whose last segment is the ARN's queue name. */
export function queueUrlOf(config: TriggerConfig, eventSourceArn: string): string | undefined {
  const name = eventSourceArn.split(":").pop();
  return Object.values(config.queues).find((url) => url.split("/").pop() === name);
}

export function createDispatcherHandler(deps: TriggerDeps = {}) {
  let defaultLogger: TriggerLogger | undefined;
  return async function handle(event: SqsEvent, context?: { awsRequestId?: string }): Promise<DispatchResult> {
    const baseLogger = deps.logger ?? (defaultLogger ??= createTriggerLogger());
    const log = context?.awsRequestId ? baseLogger.child({ awsRequestId: context.awsRequestId }) : baseLogger;
    let config: TriggerConfig;
    try {
      config = readTriggerEnv(deps.env ?? process.env);
    } catch (error) {
      // Thrown: the whole batch stays in the queue (and the Lambda Errors alarm fires) until the stack is fixed.
      log.error({ decision: "invalid-config", faults: error instanceof TriggerEnvError ? error.faults : [String(error)] }, "trigger environment is invalid");
      throw error;
    }
    const records: unknown = (event as { Records?: unknown })?.Records;
    if (!Array.isArray(records)) {
      log.error({ decision: "invalid", reason: "event has no Records array" }, "not an SQS event");
      return { batchItemFailures: [], messages: [] };
    }
    const s3 = deps.ports ? undefined : deps.s3 ?? new S3Client({ forcePathStyle: config.s3ForcePathStyle });
    const serving = config.serving ?? { mode: "batch" };
    const now = deps.now ?? (() => new Date());
    const sageMaker = deps.ports || serving.mode === "async" ? undefined : deps.sageMaker ?? new SageMakerClient({});
    const sageMakerRuntime = deps.ports || serving.mode !== "async" ? undefined : deps.sageMakerRuntime ?? new SageMakerRuntimeClient({});
    const sqs = deps.ports ? undefined : deps.sqs ?? new SQSClient({});
    const ports = deps.ports ?? (() => {
      const store = s3RunStore(s3!, config.dataBucket);
      // The same admission and exactly-once rules either way: only what a "job" is differs (docs/serving.md).
      const jobs = serving.mode === "async"
        ? asyncEndpointJobControl({ runtime: sageMakerRuntime!, store, endpointName: serving.endpointName, requestsPrefix: config.requestsPrefix, outputPrefix: config.outputPrefix, now })
        : sageMakerJobControl(sageMaker!);
      return { store, jobs, queue: sqsQueueControl(sqs!) };
    })();
    const dispatch: DispatchDeps = { config, ...ports, log, now };
    const cache: AdmissionCache = {};
    const result: DispatchResult = { batchItemFailures: [], messages: [] };
    try {
      // One after another: each admission sees the ones before it.
      for (const record of records as SqsRecord[]) {
        const queueUrl = queueUrlOf(config, String(record?.eventSourceARN ?? ""));
        if (!queueUrl) {
          log.error({ decision: "invalid", messageId: record?.messageId, eventSourceARN: record?.eventSourceARN }, "message from a queue this stack does not know; left in its queue");
          result.batchItemFailures.push({ itemIdentifier: String(record?.messageId) });
          continue;
        }
        const message: QueueMessage = {
          messageId: record.messageId,
          receiptHandle: record.receiptHandle,
          body: record.body,
          queueUrl,
          sentAt: enqueuedAt(record),
          receiveCount: Number(record.attributes?.ApproximateReceiveCount ?? 1),
        };
        const { action, outcomes } = await dispatchMessage(dispatch, cache, message);
        result.messages.push({ messageId: message.messageId, action: action.kind, outcomes });
        if (!(await apply(dispatch, message, action))) result.batchItemFailures.push({ itemIdentifier: message.messageId });
      }
      return result;
    } finally {
      s3?.destroy();
      sageMaker?.destroy();
      sageMakerRuntime?.destroy();
      sqs?.destroy();
    }
  };
}

function enqueuedAt(record: SqsRecord): Date {
  const attribute = (record.messageAttributes as Record<string, { stringValue?: string }> | undefined)?.[ENQUEUED_AT_ATTRIBUTE]?.stringValue;
  const carried = attribute ? Date.parse(attribute) : NaN;
  return new Date(Number.isFinite(carried) ? carried : Number(record.attributes?.SentTimestamp ?? Date.now()));
}

/** True when the message may be deleted (started, duplicate, dead-lettered); false: it stays queued. */
async function apply(deps: DispatchDeps, message: QueueMessage, action: MessageAction): Promise<boolean> {
  if (action.kind === "done") return true;
  if (action.kind === "retry") {
    try {
      await deps.queue.delay(message.queueUrl, message.receiptHandle, action.delaySeconds);
    } catch (error) {
      // The queue's visibility timeout then decides when it comes back.
      deps.log.warn({ messageId: message.messageId, error: describeError(error) }, "ChangeMessageVisibility failed");
    }
    return false;
  }
  if (action.kind === "requeue") {
    try {
      await deps.queue.requeue(message.queueUrl, action.letter, action.delaySeconds);
      return true;
    } catch (error) {
      deps.log.warn({ messageId: message.messageId, error: describeError(error) }, "could not requeue the message; it stays queued");
      return false;
    }
  }
  try {
    await deps.queue.deadLetter(deps.config.queues.deadLetter, action.letter);
    return true;
  } catch (error) {
    deps.log.error({ messageId: message.messageId, error: describeError(error) }, "could not move the message to the dead-letter queue; it stays queued");
    return false;
  }
}

/** The Lambda entry point (`index.handler` in the bundle). */
export const handler = createDispatcherHandler();
