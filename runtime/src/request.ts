// The forecast request object (version 1) of docs/contract.md, validated field by field.

export interface S3Location {
  bucket: string;
  key: string;
}

export interface ForecastRequest {
  version: 1;
  jobName: string;
  runId: string;
  input: string;
  outputPrefix: string;
  cascadeSteps: number[];
  outputFormat: "netcdf4";
  compression: "none" | "gzip" | "bitround";
  requestedAt: string;
  event: {
    bucket: string;
    key: string;
    versionId?: string;
    sequencer?: string;
    eventName: string;
    eventTime: string;
  };
}

/** A fault in the request body; `field` is a JSON path such as `cascadeSteps[2]`. */
export class RequestError extends Error {
  constructor(readonly field: string, readonly fault: string) {
    super(field === "" ? `request: ${fault}` : `request field ${field}: ${fault}`);
    this.name = "RequestError";
  }
}

const JOB_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const TOP_LEVEL = ["version", "jobName", "runId", "input", "outputPrefix", "cascadeSteps", "outputFormat", "compression", "requestedAt", "event"];
const EVENT_FIELDS = ["bucket", "key", "versionId", "sequencer", "eventName", "eventTime"];

/** s3://bucket/key → { bucket, key }; throws RequestError for `field` when malformed. */
export function parseS3Uri(uri: string, field: string): S3Location {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.*)$/.exec(uri);
  if (!match) throw new RequestError(field, `must be an s3://bucket/key URI, got ${JSON.stringify(uri)}`);
  return { bucket: match[1], key: match[2] };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function rejectUnknown(object: Record<string, unknown>, allowed: string[], prefix: string): void {
  for (const name of Object.keys(object)) {
    if (!allowed.includes(name)) throw new RequestError(prefix + name, "is not a field of request version 1");
  }
}

function text(object: Record<string, unknown>, name: string, prefix = ""): string {
  const value = object[name];
  if (value === undefined) throw new RequestError(prefix + name, "is missing");
  if (typeof value !== "string" || value === "") throw new RequestError(prefix + name, `must be a non-empty string, got ${JSON.stringify(value)}`);
  return value;
}

function isoTime(object: Record<string, unknown>, name: string, prefix = ""): string {
  const value = text(object, name, prefix);
  if (!ISO_TIME.test(value) || Number.isNaN(Date.parse(value))) throw new RequestError(prefix + name, `must be an ISO 8601 UTC time, got ${JSON.stringify(value)}`);
  return value;
}

export function validateCascadeSteps(value: unknown): number[] {
  if (!Array.isArray(value)) throw new RequestError("cascadeSteps", `must be an array of 1 to 3 step counts, got ${JSON.stringify(value)}`);
  if (value.length < 1 || value.length > 3) throw new RequestError("cascadeSteps", `must have 1 to 3 entries (short, medium, long), got ${value.length}`);
  value.forEach((count, i) => {
    if (typeof count !== "number" || !Number.isInteger(count) || count < 0) {
      throw new RequestError(`cascadeSteps[${i}]`, `must be a non-negative integer, got ${JSON.stringify(count)}`);
    }
    if (i < value.length - 1 && count > 20) {
      throw new RequestError(`cascadeSteps[${i}]`, `only the last stage may run more than 20 steps, got ${count}`);
    }
  });
  const total = (value as number[]).reduce((a, b) => a + b, 0);
  if (total < 1 || total > 100) throw new RequestError("cascadeSteps", `must add up to 1 … 100 steps, got ${total}`);
  return value as number[];
}

/** Parses and validates a request body; every fault throws RequestError naming the field. */
export function parseForecastRequest(body: string): ForecastRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    throw new RequestError("", `body is not valid JSON (${(error as Error).message})`);
  }
  if (!isObject(parsed)) throw new RequestError("", "body must be a JSON object");
  rejectUnknown(parsed, TOP_LEVEL, "");
  if (parsed.version !== 1) throw new RequestError("version", `must be 1, got ${JSON.stringify(parsed.version)}`);

  const jobName = text(parsed, "jobName");
  if (!JOB_NAME.test(jobName)) throw new RequestError("jobName", `must match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}, got ${JSON.stringify(jobName)}`);
  const runId = text(parsed, "runId");
  if (runId.includes("/")) throw new RequestError("runId", `must not contain "/", got ${JSON.stringify(runId)}`);

  const input = text(parsed, "input");
  const inputLocation = parseS3Uri(input, "input");
  const inputFolders = inputLocation.key.split("/");
  if (!inputLocation.key.toLowerCase().endsWith(".nc") || inputFolders.length < 2 || inputFolders[inputFolders.length - 2] !== runId) {
    throw new RequestError("input", `must be s3://<bucket>/<inputPrefix>${runId}/<name>.nc, got ${JSON.stringify(input)}`);
  }
  const outputPrefix = text(parsed, "outputPrefix");
  const outputLocation = parseS3Uri(outputPrefix, "outputPrefix");
  if (!(outputLocation.key === `${runId}/` || outputLocation.key.endsWith(`/${runId}/`))) {
    throw new RequestError("outputPrefix", `must be s3://<bucket>/<outputPrefix>${runId}/, got ${JSON.stringify(outputPrefix)}`);
  }

  const cascadeSteps = validateCascadeSteps(parsed.cascadeSteps);
  if (parsed.outputFormat !== "netcdf4") throw new RequestError("outputFormat", `must be "netcdf4", got ${JSON.stringify(parsed.outputFormat)}`);
  if (parsed.compression !== "none" && parsed.compression !== "gzip" && parsed.compression !== "bitround") {
    throw new RequestError("compression", `must be "none", "gzip" or "bitround", got ${JSON.stringify(parsed.compression)}`);
  }
  const requestedAt = isoTime(parsed, "requestedAt");

  if (!isObject(parsed.event)) throw new RequestError("event", `must be an object, got ${JSON.stringify(parsed.event)}`);
  const event = parsed.event;
  rejectUnknown(event, EVENT_FIELDS, "event.");
  const versionId = event.versionId === undefined ? undefined : text(event, "versionId", "event.");
  const sequencer = event.sequencer === undefined ? undefined : text(event, "sequencer", "event.");
  // The trigger names jobs after the versionId, else the sequencer: one of them identifies the upload.
  if (versionId === undefined && sequencer === undefined) throw new RequestError("event", "needs a versionId or a sequencer");
  return {
    version: 1,
    jobName,
    runId,
    input,
    outputPrefix,
    cascadeSteps,
    outputFormat: "netcdf4",
    compression: parsed.compression,
    requestedAt,
    event: {
      bucket: text(event, "bucket", "event."),
      key: text(event, "key", "event."),
      ...(versionId === undefined ? {} : { versionId }),
      ...(sequencer === undefined ? {} : { sequencer }),
      eventName: text(event, "eventName", "event."),
      eventTime: isoTime(event, "eventTime", "event."),
    },
  };
}
