// The forecast request object (version 1) of docs/contract.md: written by the trigger, parsed by the
// runtime, which also checks that it stays in the stack's lanes (bucket and prefixes).
import { cascadeStepsFault } from "./model";
import { identityHash, SAGEMAKER_NAME_PATTERN } from "./job-name";
import { formatS3Uri, inputFolderKey, isInputFileName, markerKey, MARKER_NAME, outputFolderKey, parseS3Uri, runIdFault, type S3Location } from "./s3-layout";

export interface ForecastRequest {
  version: 1;
  jobName: string;
  runId: string;
  input: string;
  outputPrefix: string;
  cascadeSteps: number[];
  outputFormat: "netcdf4";
  compression: Compression;
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

export const REQUEST_FIELDS = ["version", "jobName", "runId", "input", "outputPrefix", "cascadeSteps", "outputFormat", "compression", "requestedAt", "event"] as const;
/**
 * The eventName of a backfill run (`npm run campaign`): the marker exists already, and the run carries
 * the marker's versionId, or a sequencer made from its LastModified and ETag (docs/contract.md).
 */
export const CAMPAIGN_EVENT_NAME = "fuxi:Campaign";

export const REQUEST_EVENT_FIELDS = ["bucket", "key", "versionId", "sequencer", "eventName", "eventTime"] as const;
export const COMPRESSIONS = ["none", "gzip", "bitround"] as const;
export type Compression = (typeof COMPRESSIONS)[number];

/** Where a stack's requests may read and write: its data bucket, input prefix and output prefix. */
export interface RequestLanes {
  bucket: string;
  inputPrefix: string;
  outputPrefix: string;
}

/** A fault in the request body: HTTP 400. `field` is a JSON path such as `cascadeSteps[2]` ("" for the body). */
export class RequestError extends Error {
  readonly httpStatus = 400;
  constructor(readonly field: string, readonly fault: string) {
    super(field === "" ? `request: ${fault}` : `request field ${field}: ${fault}`);
    this.name = "RequestError";
  }
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function rejectUnknown(object: Record<string, unknown>, allowed: readonly string[], prefix: string): void {
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

function s3Location(value: string, field: string): S3Location {
  const location = parseS3Uri(value);
  if (!location) throw new RequestError(field, `must be an s3://bucket/key URI, got ${JSON.stringify(value)}`);
  return location;
}

export function validateCascadeSteps(value: unknown): number[] {
  if (!Array.isArray(value)) throw new RequestError("cascadeSteps", `must be an array of 1 to 3 step counts, got ${JSON.stringify(value)}`);
  const fault = cascadeStepsFault(value);
  if (fault) throw new RequestError(fault.at === undefined ? "cascadeSteps" : `cascadeSteps[${fault.at}]`, fault.fault);
  return value as number[];
}

/**
 * Parses and validates a request body against the stack's lanes; every fault throws RequestError
 * naming the field. In lane: `input` is `s3://<bucket>/<inputPrefix><runId>/<name>.nc`,
 * `outputPrefix` is `s3://<bucket>/<outputPrefix><runId>/`, `event` is the `_SUCCESS` upload of that
 * input folder, and `jobName` ends in the identity hash of that upload.
 */
export function parseForecastRequest(body: string, lanes: RequestLanes): ForecastRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    throw new RequestError("", `body is not valid JSON (${(error as Error).message})`);
  }
  if (!isObject(parsed)) throw new RequestError("", "body must be a JSON object");
  rejectUnknown(parsed, REQUEST_FIELDS, "");
  if (parsed.version !== 1) throw new RequestError("version", `must be 1, got ${JSON.stringify(parsed.version)}`);

  const jobName = text(parsed, "jobName");
  if (!SAGEMAKER_NAME_PATTERN.test(jobName)) throw new RequestError("jobName", `must match ${SAGEMAKER_NAME_PATTERN.source}, got ${JSON.stringify(jobName)}`);
  const runId = text(parsed, "runId");
  const runFault = runIdFault(runId);
  if (runFault) throw new RequestError("runId", `${runFault}: ${JSON.stringify(runId)}`);

  const inputFolder = inputFolderKey(lanes.inputPrefix, runId);
  const expectedInput = `${formatS3Uri({ bucket: lanes.bucket, key: inputFolder })}<name>.nc`;
  const input = text(parsed, "input");
  const inputLocation = s3Location(input, "input");
  if (inputLocation.bucket !== lanes.bucket || !inputLocation.key.startsWith(inputFolder) || !isInputFileName(inputLocation.key.slice(inputFolder.length))) {
    throw new RequestError("input", `must be ${expectedInput} (this stack's bucket and input prefix, the run's folder), got ${JSON.stringify(input)}`);
  }
  const expectedOutput = formatS3Uri({ bucket: lanes.bucket, key: outputFolderKey(lanes.outputPrefix, runId) });
  const outputPrefix = text(parsed, "outputPrefix");
  s3Location(outputPrefix, "outputPrefix");
  if (outputPrefix !== expectedOutput) {
    throw new RequestError("outputPrefix", `must be ${expectedOutput} (this stack's bucket and output prefix, the run's folder), got ${JSON.stringify(outputPrefix)}`);
  }

  const cascadeSteps = validateCascadeSteps(parsed.cascadeSteps);
  if (parsed.outputFormat !== "netcdf4") throw new RequestError("outputFormat", `must be "netcdf4", got ${JSON.stringify(parsed.outputFormat)}`);
  if (!COMPRESSIONS.includes(parsed.compression as (typeof COMPRESSIONS)[number])) {
    throw new RequestError("compression", `must be one of ${COMPRESSIONS.map((c) => JSON.stringify(c)).join(", ")}, got ${JSON.stringify(parsed.compression)}`);
  }
  const requestedAt = isoTime(parsed, "requestedAt");

  if (!isObject(parsed.event)) throw new RequestError("event", `must be an object, got ${JSON.stringify(parsed.event)}`);
  const raw = parsed.event;
  rejectUnknown(raw, REQUEST_EVENT_FIELDS, "event.");
  const versionId = raw.versionId === undefined ? undefined : text(raw, "versionId", "event.");
  const sequencer = raw.sequencer === undefined ? undefined : text(raw, "sequencer", "event.");
  // The trigger names jobs after the versionId, else the sequencer: one of them identifies the upload.
  if (versionId === undefined && sequencer === undefined) throw new RequestError("event", "needs a versionId or a sequencer");
  const event: ForecastRequest["event"] = {
    bucket: text(raw, "bucket", "event."),
    key: text(raw, "key", "event."),
    ...(versionId === undefined ? {} : { versionId }),
    ...(sequencer === undefined ? {} : { sequencer }),
    eventName: text(raw, "eventName", "event."),
    eventTime: isoTime(raw, "eventTime", "event."),
  };
  if (event.bucket !== lanes.bucket) throw new RequestError("event.bucket", `must be this stack's bucket ${JSON.stringify(lanes.bucket)}, got ${JSON.stringify(event.bucket)}`);
  const marker = markerKey(lanes.inputPrefix, runId);
  if (event.key !== marker) throw new RequestError("event.key", `must be the ${MARKER_NAME} marker of the run's input folder, ${JSON.stringify(marker)}, got ${JSON.stringify(event.key)}`);
  if (!event.eventName.startsWith("ObjectCreated:") && event.eventName !== CAMPAIGN_EVENT_NAME) {
    throw new RequestError("event.eventName", `must be an ObjectCreated event or ${JSON.stringify(CAMPAIGN_EVENT_NAME)}, got ${JSON.stringify(event.eventName)}`);
  }
  const hash = identityHash(event);
  if (!jobName.endsWith(`-${hash}`)) {
    throw new RequestError("jobName", `must end in "-${hash}", the identity hash of event (bucket, key, versionId or sequencer), got ${JSON.stringify(jobName)}`);
  }
  return {
    version: 1,
    jobName,
    runId,
    input,
    outputPrefix,
    cascadeSteps,
    outputFormat: "netcdf4",
    compression: parsed.compression as ForecastRequest["compression"],
    requestedAt,
    event,
  };
}
