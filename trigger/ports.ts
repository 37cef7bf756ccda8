/**
 * What the dispatcher needs from S3, SageMaker and SQS, as small interfaces: `aws-ports.ts` implements
 * them with the AWS SDK (the Lambda, the local pipeline, the wire tests), `tools/memory-ports.ts` in
 * memory on a simulated clock (`npm run bench:burst`). Errors are AWS-shaped (`name`, `$metadata`),
 * so `errors.ts` classifies both alike.
 */
import type { CreateTransformJobCommandInput } from "@aws-sdk/client-sagemaker";
import type { RunFolderListing } from "./s3-io";

/** The data bucket. Keys are decoded object keys. */
export interface RunStore {
  exists(key: string): Promise<boolean>;
  listRunFolder(folderKey: string): Promise<RunFolderListing>;
  /** Unconditional write (`_FAILED.json`). */
  putJson(key: string, value: unknown): Promise<void>;
  /** Written only when the key does not exist yet (`If-None-Match: *`); false when another writer was first. */
  createJson(key: string, value: unknown): Promise<boolean>;
  /** The first `max` keys under `prefix` in listing (lexical) order. */
  listKeys(prefix: string, max: number): Promise<string[]>;
  getJson(key: string): Promise<unknown>;
}

/** SageMaker Batch Transform. */
export interface JobControl {
  /** Names of this stack's InProgress jobs (`<jobNamePrefix>-…`), counted from SageMaker. */
  listInProgress(jobNamePrefix: string): Promise<string[]>;
  /** DescribeTransformJob's TransformJobStatus, undefined when there is no such job. */
  status(jobName: string): Promise<string | undefined>;
  /** How many of this stack's jobs were created after `since` (any status). */
  createdSince(jobNamePrefix: string, since: Date): Promise<number>;
  create(input: CreateTransformJobCommandInput): Promise<void>;
}

export interface DeadLetter {
  body: string;
  attributes: Record<string, string>;
}

/** The run queues. */
export interface QueueControl {
  /** ChangeMessageVisibility: the message comes back after `seconds`. */
  delay(queueUrl: string, receiptHandle: string, seconds: number): Promise<void>;
  deadLetter(queueUrl: string, message: DeadLetter): Promise<void>;
  /** SendMessage of a copy that becomes visible after `delaySeconds` (≤ 900): a fresh receive count for a long wait. */
  requeue(queueUrl: string, message: DeadLetter, delaySeconds: number): Promise<void>;
  /** Messages in the queue, visible or in flight (SQS's approximate counts). */
  depth(queueUrl: string): Promise<number>;
}

/** One CloudWatch metric data point (written as Embedded Metric Format in the log line). */
export type MetricName = "RunsStarted" | "RunsNotStarted" | "RunsWaiting";
