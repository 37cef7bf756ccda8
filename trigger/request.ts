import type { CreateTransformJobCommandInput } from "@aws-sdk/client-sagemaker";
import type { TriggerConfig } from "./env";
import type { Marker } from "./event";

import { formatS3Uri, outputFolderKey, parseForecastRequest, requestKey, transformFolderKey, type ForecastRequest } from "../runtime/src/contract";

/** `s3://<bucket>/<key>` with the key as stored (not URL-encoded). */
export const s3Uri = (bucket: string, key: string): string => formatS3Uri({ bucket, key });

/** The upload that started the run, as recorded in the request and in `_FAILED.json`. */
export function eventIdentity(marker: Marker): ForecastRequest["event"] {
  const { bucket, key, versionId, sequencer, eventName, eventTime } = marker;
  return {
    bucket,
    key,
    ...(versionId !== undefined ? { versionId } : {}),
    ...(sequencer !== undefined ? { sequencer } : {}),
    eventName,
    eventTime,
  };
}

/**
 * The request for this marker and input, checked by the runtime's own parser against the stack's
 * lanes before it is written: a request the runtime would reject is a bug here, not a job to start.
 */
export function buildForecastRequest(
  config: TriggerConfig,
  marker: Marker,
  jobName: string,
  inputKey: string,
  requestedAt: Date,
): ForecastRequest {
  const request: ForecastRequest = {
    version: 1,
    jobName,
    runId: marker.runId,
    input: s3Uri(marker.bucket, inputKey),
    outputPrefix: s3Uri(marker.bucket, outputFolderKey(config.outputPrefix, marker.runId)),
    cascadeSteps: [...config.cascadeSteps],
    outputFormat: "netcdf4",
    compression: config.outputCompression,
    requestedAt: requestedAt.toISOString(),
    event: eventIdentity(marker),
  };
  parseForecastRequest(JSON.stringify(request), { bucket: config.dataBucket, inputPrefix: config.inputPrefix, outputPrefix: config.outputPrefix });
  return request;
}

export const STACK_TAG = "fuxi:stack";
export const RUN_ID_TAG = "fuxi:runId";

/** AWS tag values allow letters, digits, spaces and `_.:/=+-@`, up to 256 characters. */
export function tagValue(text: string): string {
  return text.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, "_").slice(0, 256);
}

export function buildCreateTransformJobInput(
  config: TriggerConfig,
  bucket: string,
  jobName: string,
  runId: string,
): CreateTransformJobCommandInput {
  return {
    TransformJobName: jobName,
    ModelName: config.modelName,
    MaxConcurrentTransforms: 1,
    MaxPayloadInMB: 1,
    BatchStrategy: "SingleRecord",
    ModelClientConfig: {
      InvocationsTimeoutInSeconds: config.invocationTimeoutSeconds,
      InvocationsMaxRetries: config.invocationMaxRetries,
    },
    TransformInput: {
      // An S3Prefix equal to the full key of the one request object: the job gets exactly that object.
      DataSource: { S3DataSource: { S3DataType: "S3Prefix", S3Uri: s3Uri(bucket, requestKey(config.requestsPrefix, jobName)) } },
      ContentType: "application/json",
      CompressionType: "None",
      SplitType: "None",
    },
    TransformOutput: {
      S3OutputPath: s3Uri(bucket, transformFolderKey(outputFolderKey(config.outputPrefix, runId))),
      Accept: "application/json",
      AssembleWith: "None",
    },
    TransformResources: {
      InstanceType: config.instanceType as NonNullable<CreateTransformJobCommandInput["TransformResources"]>["InstanceType"],
      InstanceCount: config.instanceCount,
      ...(config.transformAmiVersion ? { TransformAmiVersion: config.transformAmiVersion } : {}),
    },
    Tags: [
      { Key: STACK_TAG, Value: tagValue(config.stackName) },
      { Key: RUN_ID_TAG, Value: tagValue(runId) },
    ],
  };
}
