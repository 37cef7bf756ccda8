// The data bucket's key layout (docs/contract.md, "S3 layout"), S3 URIs and event-key encoding.

export interface S3Location {
  bucket: string;
  key: string;
}

/** The input marker `<inputPrefix><runId>/_SUCCESS` and the run manifest `<outputPrefix><runId>/_SUCCESS` share a name. */
export const MARKER_NAME = "_SUCCESS";
export const MANIFEST_NAME = "_SUCCESS";
/** Written by the trigger instead of starting a job. */
export const FAILED_NAME = "_FAILED.json";
/** Batch Transform's own output (`<jobName>.json.out`) lands in this sub-folder of the run's output folder. */
export const TRANSFORM_FOLDER = "_transform/";

/**
 * An async inference endpoint writes each invocation's response (the run manifest) under
 * `<outputPrefix>_async/results/` and each failure under `<outputPrefix>_async/failures/`
 * (AsyncInferenceOutputConfig; serving.mode "async"). No run may be named after the folder.
 */
export const ASYNC_FOLDER_NAME = "_async";
export const asyncResultsKey = (outputPrefix: string): string => `${outputPrefix}${ASYNC_FOLDER_NAME}/results/`;
export const asyncFailuresKey = (outputPrefix: string): string => `${outputPrefix}${ASYNC_FOLDER_NAME}/failures/`;

/** S3 user metadata on every step file (`x-amz-meta-<name>`). */
export const STEP_METADATA = {
  /** The fingerprint of the request that wrote it (docs/contract.md): resuming trusts only matching files. */
  fingerprint: "fuxi-fingerprint",
  /** SHA-256 (hex) of the file's bytes, also listed in the manifest. */
  sha256: "fuxi-sha256",
} as const;

/** S3 bucket names: 3-63 of a-z 0-9 . - (first and last a letter or digit). */
export const BUCKET_NAME_PATTERN = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** `s3://<bucket>/<key>` with the key as stored (not URL-encoded). */
export function formatS3Uri(location: S3Location): string {
  return `s3://${location.bucket}/${location.key}`;
}

/**
 * `s3://bucket/key` → { bucket, key } (the key may be empty); undefined when it is not such a URI.
 * The bucket is not checked against BUCKET_NAME_PATTERN here: callers that need a valid name check it
 * (the request parser compares it with the stack's bucket).
 */
export function parseS3Uri(uri: string): S3Location | undefined {
  const match = /^s3:\/\/([^/]+)\/(.*)$/s.exec(uri);
  return match ? { bucket: match[1], key: match[2] } : undefined;
}

/** A key prefix is empty or ends in "/", and does not start with "/". */
export function isKeyPrefix(prefix: string): boolean {
  return prefix === "" || (prefix.endsWith("/") && !prefix.startsWith("/"));
}

/** Two prefixes overlap when one starts with the other ("" overlaps everything): keys under one could be under both. */
export function prefixesOverlap(a: string, b: string): boolean {
  return a.startsWith(b) || b.startsWith(a);
}

/** Why `runId` cannot name a run folder, or null: non-empty, no "/", not "." or "..". */
export function runIdFault(runId: string): string | null {
  if (runId === "") return "is empty";
  if (runId.includes("/")) return 'contains "/"';
  if (runId === "." || runId === "..") return `is ${JSON.stringify(runId)}, which S3 clients may treat as a path step`;
  if (runId === ASYNC_FOLDER_NAME) return `is ${JSON.stringify(runId)}, the folder the async endpoint writes its results to`;
  return null;
}

export const inputFolderKey = (inputPrefix: string, runId: string): string => `${inputPrefix}${runId}/`;
export const markerKey = (inputPrefix: string, runId: string): string => `${inputFolderKey(inputPrefix, runId)}${MARKER_NAME}`;
export const outputFolderKey = (outputPrefix: string, runId: string): string => `${outputPrefix}${runId}/`;
export const manifestKey = (outputFolder: string): string => `${outputFolder}${MANIFEST_NAME}`;
export const failedKey = (outputFolder: string): string => `${outputFolder}${FAILED_NAME}`;
export const transformFolderKey = (outputFolder: string): string => `${outputFolder}${TRANSFORM_FOLDER}`;
export const requestKey = (requestsPrefix: string, jobName: string): string => `${requestsPrefix}${jobName}.json`;

/** The input file's name within its run folder: `<name>.nc` (suffix case-insensitive), directly in the folder. */
export function isInputFileName(name: string): boolean {
  return !name.includes("/") && name.toLowerCase().endsWith(".nc");
}

/** runId of `<inputPrefix><runId>/_SUCCESS`, or why the key is not such a marker. */
export function matchMarkerKey(key: string, inputPrefix: string): { runId: string } | { skip: string } {
  if (!key.startsWith(inputPrefix)) return { skip: `key is outside the input prefix "${inputPrefix}"` };
  const parts = key.slice(inputPrefix.length).split("/");
  if (parts[parts.length - 1] !== MARKER_NAME) return { skip: `key is not a ${MARKER_NAME} marker` };
  if (parts.length === 1) return { skip: "marker at the root of the input prefix has no run folder" };
  if (parts.length > 2) return { skip: `marker is nested deeper than <inputPrefix><runId>/${MARKER_NAME}` };
  const fault = runIdFault(parts[0]);
  if (fault) return { skip: `run folder name ${fault}` };
  return { runId: parts[0] };
}

/**
 * The key as S3 event notifications carry it: form-URL-encoded like Java's URLEncoder (space → "+",
 * only A-Z a-z 0-9 . - * _ kept) except that "/" is kept.
 */
export function encodeEventKey(key: string): string {
  return key
    .split("/")
    .map((segment) =>
      encodeURIComponent(segment)
        .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
        .replace(/%20/g, "+"),
    )
    .join("/");
}

/** The inverse: "+" is a space, the rest are %-escapes. Throws URIError on a malformed escape. */
export function decodeEventKey(encoded: string): string {
  return decodeURIComponent(encoded.replace(/\+/g, " "));
}
