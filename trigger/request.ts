import type { CreateTransformJobCommandInput } from "@aws-sdk/client-sagemaker";
import type { TriggerConfig } from "./env";
import type { Marker } from "./event";

/** docs/contract.md, "Forecast request object (version 1)". The runtime owns and validates it; type only, erased from the bundle. */
import type { ForecastRequest } from "../runtime/src/request";
export type { ForecastRequest };

/** `s3://<bucket>/<key>` with the key as stored (not URL-encoded). */
export const s3Uri = (bucket: string, key: string): string => `s3://${bucket}/${key}`;

export const runFolderKey = (config: TriggerConfig, runId: string): string => `${config.inputPrefix}${runId}/`;
export const runOutputKey = (config: TriggerConfig, runId: string): string => `${config.outputPrefix}${runId}/`;
export const requestKey = (config: TriggerConfig, jobName: string): string => `${config.requestsPrefix}${jobName}.json`;
export const failedMarkerKey = (config: TriggerConfig, runId: string): string => `${runOutputKey(config, runId)}_FAILED.json`;

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

export function buildForecastRequest(
  config: TriggerConfig,
  marker: Marker,
  jobName: string,
  inputKey: string,
  requestedAt: Date,
): ForecastRequest {
  return {
    version: 1,
    jobName,
    runId: marker.runId,
    input: s3Uri(marker.bucket, inputKey),
    outputPrefix: s3Uri(marker.bucket, runOutputKey(config, marker.runId)),
    cascadeSteps: [...config.cascadeSteps],
    outputFormat: "netcdf4",
    compression: config.outputCompression,
    requestedAt: requestedAt.toISOString(),
    event: eventIdentity(marker),
  };
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
      DataSource: { S3DataSource: { S3DataType: "S3Prefix", S3Uri: s3Uri(bucket, requestKey(config, jobName)) } },
      ContentType: "application/json",
      CompressionType: "None",
      SplitType: "None",
    },
    TransformOutput: {
      S3OutputPath: s3Uri(bucket, `${runOutputKey(config, runId)}_transform/`),
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
