/**
 * CreateTransformJob request validation, mirroring the constraints of the SageMaker API model
 * (botocore sagemaker-2017-07-24 service-2.json) and the messages the service sends back.
 * Pure: no I/O, so the rules can be tested one by one.
 */

import { parseS3Uri as parseContractS3Uri, SAGEMAKER_NAME_PATTERN } from "../runtime/src/contract";

/** As the service's messages spell it (the API model's pattern has no "$"). */
export const JOB_NAME_PATTERN = SAGEMAKER_NAME_PATTERN.source.replace(/\$$/, "");
const JOB_NAME_RE = SAGEMAKER_NAME_PATTERN;
const MODEL_NAME_RE = /^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const ENV_KEY_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,1023}$/;
const S3_URI_RE = /^(https|s3):\/\/([^/]+)\/?(.*)$/;
const INSTANCE_TYPE_RE = /^ml\.[a-z0-9]+\.[a-z0-9]+$/;

export interface TransformJobRequest {
  TransformJobName?: unknown;
  ModelName?: unknown;
  MaxConcurrentTransforms?: unknown;
  ModelClientConfig?: { InvocationsTimeoutInSeconds?: unknown; InvocationsMaxRetries?: unknown };
  MaxPayloadInMB?: unknown;
  BatchStrategy?: unknown;
  Environment?: unknown;
  TransformInput?: {
    DataSource?: { S3DataSource?: { S3DataType?: unknown; S3Uri?: unknown } };
    ContentType?: unknown;
    CompressionType?: unknown;
    SplitType?: unknown;
  };
  TransformOutput?: { S3OutputPath?: unknown; Accept?: unknown; AssembleWith?: unknown; KmsKeyId?: unknown };
  TransformResources?: { InstanceType?: unknown; InstanceCount?: unknown; TransformAmiVersion?: unknown };
  DataProcessing?: unknown;
  Tags?: unknown;
}

/** A CreateTransformJob request that passed validation, with the API's defaults filled in. */
export interface ValidTransformJob {
  TransformJobName: string;
  ModelName: string;
  MaxConcurrentTransforms?: number;
  ModelClientConfig: { InvocationsTimeoutInSeconds: number; InvocationsMaxRetries: number };
  MaxPayloadInMB?: number;
  BatchStrategy?: "MultiRecord" | "SingleRecord";
  Environment: Record<string, string>;
  TransformInput: {
    DataSource: { S3DataSource: { S3DataType: "S3Prefix" | "ManifestFile" | "AugmentedManifestFile"; S3Uri: string } };
    ContentType?: string;
    CompressionType: "None" | "Gzip";
    SplitType: "None" | "Line" | "RecordIO" | "TFRecord";
  };
  TransformOutput: { S3OutputPath: string; Accept?: string; AssembleWith?: "None" | "Line"; KmsKeyId?: string };
  TransformResources: { InstanceType: string; InstanceCount: number; TransformAmiVersion?: string };
  DataProcessing?: unknown;
  Tags?: unknown;
}

export type ValidationResult = { ok: true; job: ValidTransformJob } | { ok: false; message: string };

/**
 * The service reports constraint violations as
 * "N validation error(s) detected: Value 'x' at 'path' failed to satisfy constraint: ...; ...".
 */
export function validateCreateTransformJob(request: TransformJobRequest): ValidationResult {
  const errors: string[] = [];
  const violation = (value: unknown, path: string, constraint: string) =>
    errors.push(`Value ${describe(value)} at '${path}' failed to satisfy constraint: ${constraint}`);

  const name = request.TransformJobName;
  if (name === undefined || name === null) violation(null, "transformJobName", "Member must not be null");
  else if (typeof name !== "string") violation(name, "transformJobName", "Member must be a string");
  else {
    if (name.length > 63) violation(name, "transformJobName", "Member must have length less than or equal to 63");
    if (!JOB_NAME_RE.test(name)) violation(name, "transformJobName", `Member must satisfy regular expression pattern: ${JOB_NAME_PATTERN}`);
  }

  const model = request.ModelName;
  if (model === undefined || model === null) violation(null, "modelName", "Member must not be null");
  else if (typeof model !== "string" || model.length > 63 || !MODEL_NAME_RE.test(model))
    violation(model, "modelName", "Member must satisfy regular expression pattern: ^[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?$");

  checkIntRange(request.MaxConcurrentTransforms, "maxConcurrentTransforms", 0, undefined, violation);
  checkIntRange(request.MaxPayloadInMB, "maxPayloadInMB", 0, 100, violation);
  const mcc = request.ModelClientConfig ?? {};
  checkIntRange(mcc.InvocationsTimeoutInSeconds, "modelClientConfig.invocationsTimeoutInSeconds", 1, 3600, violation);
  checkIntRange(mcc.InvocationsMaxRetries, "modelClientConfig.invocationsMaxRetries", 0, 3, violation);
  checkEnum(request.BatchStrategy, "batchStrategy", ["MultiRecord", "SingleRecord"], violation);

  const environment = request.Environment ?? {};
  if (typeof environment !== "object" || environment === null || Array.isArray(environment)) violation(environment, "environment", "Member must be a map");
  else {
    const entries = Object.entries(environment);
    if (entries.length > 16) violation(`{${entries.length} entries}`, "environment", "Member must have length less than or equal to 16");
    for (const [key, value] of entries) {
      if (!ENV_KEY_RE.test(key)) violation(key, "environment", "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z_][a-zA-Z0-9_]{0,1023}]");
      if (typeof value !== "string" || value.length > 10240) violation(value, `environment.${key}`, "Member must have length less than or equal to 10240");
    }
  }

  const input = request.TransformInput;
  const s3Source = input?.DataSource?.S3DataSource;
  if (!input) violation(null, "transformInput", "Member must not be null");
  else if (!s3Source) violation(null, "transformInput.dataSource.s3DataSource", "Member must not be null");
  else {
    checkEnum(s3Source.S3DataType, "transformInput.dataSource.s3DataSource.s3DataType", ["S3Prefix", "ManifestFile", "AugmentedManifestFile"], violation, true);
    checkS3Uri(s3Source.S3Uri, "transformInput.dataSource.s3DataSource.s3Uri", violation);
    checkEnum(input.CompressionType, "transformInput.compressionType", ["None", "Gzip"], violation);
    checkEnum(input.SplitType, "transformInput.splitType", ["None", "Line", "RecordIO", "TFRecord"], violation);
  }

  const output = request.TransformOutput;
  if (!output) violation(null, "transformOutput", "Member must not be null");
  else {
    checkS3Uri(output.S3OutputPath, "transformOutput.s3OutputPath", violation);
    checkEnum(output.AssembleWith, "transformOutput.assembleWith", ["None", "Line"], violation);
  }

  const resources = request.TransformResources;
  if (!resources) violation(null, "transformResources", "Member must not be null");
  else {
    if (typeof resources.InstanceType !== "string" || !INSTANCE_TYPE_RE.test(resources.InstanceType))
      violation(resources.InstanceType ?? null, "transformResources.instanceType", "Member must satisfy enum value set");
    if (resources.InstanceCount === undefined) violation(null, "transformResources.instanceCount", "Member must not be null");
    else checkIntRange(resources.InstanceCount, "transformResources.instanceCount", 1, 100, violation);
  }

  if (errors.length > 0) {
    const count = errors.length === 1 ? "1 validation error" : `${errors.length} validation errors`;
    return { ok: false, message: `${count} detected: ${errors.join("; ")}` };
  }

  // All casts below are checked above.
  const job: ValidTransformJob = {
    TransformJobName: name as string,
    ModelName: model as string,
    ModelClientConfig: {
      InvocationsTimeoutInSeconds: (mcc.InvocationsTimeoutInSeconds as number | undefined) ?? 600,
      InvocationsMaxRetries: (mcc.InvocationsMaxRetries as number | undefined) ?? 3,
    },
    Environment: environment as Record<string, string>,
    TransformInput: {
      DataSource: { S3DataSource: s3Source as ValidTransformJob["TransformInput"]["DataSource"]["S3DataSource"] },
      ContentType: input!.ContentType as string | undefined,
      CompressionType: (input!.CompressionType as "None" | "Gzip" | undefined) ?? "None",
      SplitType: (input!.SplitType as ValidTransformJob["TransformInput"]["SplitType"] | undefined) ?? "None",
    },
    TransformOutput: output as ValidTransformJob["TransformOutput"],
    TransformResources: resources as ValidTransformJob["TransformResources"],
  };
  if (request.MaxConcurrentTransforms !== undefined) job.MaxConcurrentTransforms = request.MaxConcurrentTransforms as number;
  if (request.MaxPayloadInMB !== undefined) job.MaxPayloadInMB = request.MaxPayloadInMB as number;
  if (request.BatchStrategy !== undefined) job.BatchStrategy = request.BatchStrategy as "MultiRecord" | "SingleRecord";
  if (request.DataProcessing !== undefined) job.DataProcessing = request.DataProcessing;
  if (request.Tags !== undefined) job.Tags = request.Tags;
  return { ok: true, job };
}

/** `s3://bucket/key/part` → { bucket, key } (the key may be empty). */
export function parseS3Uri(uri: string): { bucket: string; key: string } {
  // The API's pattern makes the "/" after the bucket optional.
  const location = parseContractS3Uri(/^s3:\/\/[^/]+$/.test(uri) ? `${uri}/` : uri);
  if (!location) throw new Error(`not an s3://bucket/key URI: ${JSON.stringify(uri)}`);
  return location;
}

type Violation = (value: unknown, path: string, constraint: string) => void;

function checkIntRange(value: unknown, path: string, min: number, max: number | undefined, violation: Violation) {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isInteger(value)) return violation(value, path, "Member must be an integer");
  if (value < min) violation(value, path, `Member must have value greater than or equal to ${min}`);
  if (max !== undefined && value > max) violation(value, path, `Member must have value less than or equal to ${max}`);
}

function checkEnum(value: unknown, path: string, allowed: string[], violation: Violation, required = false) {
  if (value === undefined || value === null) {
    if (required) violation(null, path, "Member must not be null");
    return;
  }
  if (typeof value !== "string" || !allowed.includes(value)) violation(value, path, `Member must satisfy enum value set: [${allowed.join(", ")}]`);
}

function checkS3Uri(value: unknown, path: string, violation: Violation) {
  if (value === undefined || value === null) return violation(null, path, "Member must not be null");
  if (typeof value !== "string" || value.length > 1024 || !S3_URI_RE.test(value))
    violation(value, path, "Member must satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$");
}

function describe(value: unknown): string {
  return value === null ? "null" : `'${typeof value === "string" ? value : JSON.stringify(value)}'`;
}
