import { CreateTransformJobCommand, DescribeTransformJobCommand, ListTransformJobsCommand, SageMakerClient, SageMakerServiceException, type CreateTransformJobCommandInput } from "@aws-sdk/client-sagemaker";
import { ChangeMessageVisibilityCommand, GetQueueAttributesCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { SqsEvent } from "../trigger/handler";
import { mockClient } from "aws-sdk-client-mock";
import { encodeEventKey } from "../runtime/src/contract";
import type { S3Event, S3EventRecord } from "../trigger/event";
import { createTriggerLogger } from "../trigger/log";

export const BUCKET = "fuxi-trigger-test";

/** A complete, valid trigger environment (docs/contract.md). */
export const TEST_ENV: Record<string, string> = {
  STACK_NAME: "test",
  DATA_BUCKET: BUCKET,
  INPUT_PREFIX: "input/",
  OUTPUT_PREFIX: "output/",
  REQUESTS_PREFIX: "requests/",
  JOB_NAME_PREFIX: "fuxi-test",
  MODEL_NAME: "fuxi-test-model-1234",
  CASCADE_STEPS: "20,20,20",
  OUTPUT_COMPRESSION: "none",
  TRANSFORM_INSTANCE_TYPE: "ml.g5.2xlarge",
  TRANSFORM_INSTANCE_COUNT: "1",
  INVOCATION_TIMEOUT_SECONDS: "3600",
  INVOCATION_MAX_RETRIES: "1",
  TRANSFORM_AMI_VERSION: "al2-ami-sagemaker-batch-gpu-535",
  OPERATIONAL_QUEUE_URL: "https://sqs.cn-northwest-1.amazonaws.com.cn/123456789012/fuxi-test-runs",
  BACKFILL_QUEUE_URL: "https://sqs.cn-northwest-1.amazonaws.com.cn/123456789012/fuxi-test-backfill",
  DEAD_LETTER_QUEUE_URL: "https://sqs.cn-northwest-1.amazonaws.com.cn/123456789012/fuxi-test-runs-dlq",
  MAX_CONCURRENT_JOBS: "100",
  OPERATIONAL_RESERVE: "1",
  INPUT_WAIT_MINUTES: "0",
  OPERATIONAL_MAX_WAIT_MINUTES: "1440",
  BACKFILL_MAX_WAIT_MINUTES: "18720",
  RETRY_SECONDS: "60",
  MAX_RECEIVE_COUNT: "1000",
  ADMISSION_GRACE_SECONDS: "120",
};

export const OPERATIONAL_QUEUE_ARN = "arn:aws-cn:sqs:cn-northwest-1:123456789012:fuxi-test-runs";

let messageSequence = 0;
/** An S3 event as the operational queue hands it to the dispatcher: one message per event. */
export function sqsEventOf(body: unknown, options: { receiveCount?: number; sentAt?: Date; queueArn?: string } = {}): SqsEvent {
  messageSequence++;
  return {
    Records: [{
      messageId: `m-${messageSequence}`,
      receiptHandle: `rh-${messageSequence}`,
      body: typeof body === "string" ? body : JSON.stringify(body),
      attributes: { ApproximateReceiveCount: String(options.receiveCount ?? 1), SentTimestamp: String((options.sentAt ?? new Date("2026-11-22T05:59:59.000Z")).getTime()) },
      eventSourceARN: options.queueArn ?? OPERATIONAL_QUEUE_ARN,
    }],
  };
}

/** SQS as the dispatcher calls it (ChangeMessageVisibility, SendMessage, GetQueueAttributes), recorded. */
export function fakeSqs() {
  const client = new SQSClient({ region: "cn-northwest-1", credentials: { accessKeyId: "x", secretAccessKey: "x" } });
  const mock = mockClient(client);
  mock.on(ChangeMessageVisibilityCommand).resolves({});
  mock.on(SendMessageCommand).resolves({ MessageId: "dl-1" });
  mock.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: "0", ApproximateNumberOfMessagesNotVisible: "0" } });
  const sent = () => mock.commandCalls(SendMessageCommand).map((c) => c.args[0].input);
  const delays = () => mock.commandCalls(ChangeMessageVisibilityCommand).map((c) => c.args[0].input);
  return { client, mock, sent, delays };
}

/** Encodes a key the way S3 notifications do (the contract's encoder). */
export const s3EventKey = encodeEventKey;

let sequence = 0x1000;
/** A fresh upload (new sequencer) unless the caller pins versionId/sequencer. */
export function markerRecord(
  encodedKey: string,
  options: { bucket?: string; versionId?: string; sequencer?: string; eventName?: string } = {},
): S3EventRecord {
  const object: S3EventRecord["s3"]["object"] = { key: encodedKey, size: 0, eTag: "d41d8cd98f00b204e9800998ecf8427e" };
  if (options.versionId !== undefined) object.versionId = options.versionId;
  object.sequencer = options.sequencer ?? `0062${(sequence++).toString(16).toUpperCase().padStart(12, "0")}`;
  return {
    eventName: options.eventName ?? "ObjectCreated:Put",
    eventTime: "2026-11-22T05:59:58.000Z",
    s3: { bucket: { name: options.bucket ?? BUCKET }, object },
  };
}

export const eventOf = (...records: S3EventRecord[]): S3Event => ({ Records: records });

export interface LogLine {
  level: string;
  decision?: string;
  reason?: string;
  [field: string]: unknown;
}

export function captureLogs() {
  const lines: LogLine[] = [];
  const logger = createTriggerLogger({ write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

export function sageMakerError(name: string, message: string, httpStatusCode: number): SageMakerServiceException {
  return new SageMakerServiceException({ name, message, $fault: httpStatusCode >= 500 ? "server" : "client", $metadata: { httpStatusCode } });
}

/**
 * SageMaker's CreateTransformJob as far as the trigger can observe it: names are unique forever and a
 * second create with a used name fails with the ValidationException SageMaker sends.
 */
export function fakeSageMaker() {
  const client = new SageMakerClient({ region: "cn-northwest-1", credentials: { accessKeyId: "x", secretAccessKey: "x" } });
  const mock = mockClient(client);
  const jobs = new Map<string, CreateTransformJobCommandInput>();
  /** Errors the next calls throw instead of creating a job, in order. */
  const failNext: Error[] = [];
  mock.on(CreateTransformJobCommand).callsFake((input: CreateTransformJobCommandInput) => {
    const failure = failNext.shift();
    if (failure) throw failure;
    const name = input.TransformJobName!;
    if (jobs.has(name)) {
      throw sageMakerError(
        "ValidationException",
        `Job name must be unique within an AWS account and region, and a job with this name already exists (arn:aws-cn:sagemaker:cn-northwest-1:123456789012:transform-job/${name})`,
        400,
      );
    }
    jobs.set(name, input);
    return { TransformJobArn: `arn:aws-cn:sagemaker:cn-northwest-1:123456789012:transform-job/${name}` };
  });
  // Jobs never end here: every created job is InProgress.
  mock.on(ListTransformJobsCommand).callsFake(() => ({ TransformJobSummaries: [...jobs.keys()].map((name) => ({ TransformJobName: name, TransformJobStatus: "InProgress", CreationTime: new Date(), TransformJobArn: `arn:aws-cn:sagemaker:cn-northwest-1:123456789012:transform-job/${name}` })) }));
  mock.on(DescribeTransformJobCommand).callsFake((input: { TransformJobName: string }) => {
    if (!jobs.has(input.TransformJobName)) throw sageMakerError("ResourceNotFound", `Could not find requested job with name ${input.TransformJobName}`, 400);
    return { TransformJobName: input.TransformJobName, TransformJobStatus: "InProgress" };
  });
  const createCalls = () => mock.commandCalls(CreateTransformJobCommand).map((call) => call.args[0].input);
  return { client, mock, jobs, failNext, createCalls };
}
