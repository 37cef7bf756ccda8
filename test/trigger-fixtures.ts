import { CreateTransformJobCommand, SageMakerClient, SageMakerServiceException, type CreateTransformJobCommandInput } from "@aws-sdk/client-sagemaker";
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
};

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
  const createCalls = () => mock.commandCalls(CreateTransformJobCommand).map((call) => call.args[0].input);
  return { client, mock, jobs, failNext, createCalls };
}
