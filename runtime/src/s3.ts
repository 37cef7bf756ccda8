// S3 access for the runtime: whole-object reads into one buffer, ranged parallel downloads to
// disk, multipart uploads (lib-storage) from memory or streamed from a file, listings, deletes.
// Every call goes through the SDK's standard retry strategy (S3_MAX_ATTEMPTS attempts, exponential
// backoff with jitter); what still fails becomes an S3Fault naming the operation, bucket and key.
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import type { Readable } from "node:stream";
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { formatS3Uri, type S3Location } from "./contract";

/** Attempts per S3 request unless AWS_MAX_ATTEMPTS says otherwise (the SDK default, 3, gives up within a second). */
export const S3_MAX_ATTEMPTS = 6;

/** Endpoint, region, credentials, checksum and retry settings come from the standard SDK variables. */
export function createS3Client(env: Record<string, string | undefined>): S3Client {
  return new S3Client({
    forcePathStyle: env.S3_FORCE_PATH_STYLE?.toLowerCase() === "true",
    retryMode: env.AWS_RETRY_MODE ? undefined : "standard",
    maxAttempts: env.AWS_MAX_ATTEMPTS ? undefined : S3_MAX_ATTEMPTS,
  });
}

export const s3Uri = formatS3Uri;

export function isNotFound(error: unknown): boolean {
  const cause = error instanceof S3Fault ? error.cause : error;
  if (!(cause instanceof S3ServiceException)) return false;
  return cause.name === "NoSuchKey" || cause.name === "NotFound" || cause.$metadata.httpStatusCode === 404;
}

interface AwsErrorLike {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

const THROTTLING = new Set(["SlowDown", "Throttling", "ThrottlingException", "RequestThrottled", "TooManyRequestsException", "RequestTimeout", "TimeoutError"]);

/** Worth retrying later: no answer from S3 (network), throttling, or a server error. */
export function isTransientS3Error(error: unknown): boolean {
  const e = error as AwsErrorLike;
  const status = e?.$metadata?.httpStatusCode;
  if (status === undefined || status === 0) return e?.name !== "AbortError";
  return status >= 500 || status === 429 || status === 408 || THROTTLING.has(e.name ?? "");
}

/** What the user can check, by fault. */
function hintFor(operation: string, location: S3Location, error: AwsErrorLike): string {
  const status = error.$metadata?.httpStatusCode;
  if (status === undefined || status === 0) {
    return "check that S3 is reachable from the container (region, AWS_ENDPOINT_URL_S3, VPC endpoint or NAT route)";
  }
  if (status === 403) {
    return `check that the execution role allows the ${operation} action on ${formatS3Uri(location)} (IAM policy, bucket policy, KMS key policy)`;
  }
  if (error.name === "NoSuchBucket") return `check that the bucket ${location.bucket} exists in this region`;
  if (status === 404) return `check that ${formatS3Uri(location)} exists`;
  if (status === 412) return "the object was replaced while it was read; upload it again and re-upload the marker";
  if (isTransientS3Error(error)) return "S3 kept failing after the SDK's retries; the invocation can be retried (Batch Transform retries it per InvocationsMaxRetries)";
  return "see the S3 error code above";
}

/** An S3 request that failed after the SDK's retries. HTTP 503 when transient (retry later), else 500. */
export class S3Fault extends Error {
  readonly httpStatus: number;
  readonly transient: boolean;
  readonly hint: string;
  constructor(readonly operation: string, readonly location: S3Location, override readonly cause: unknown) {
    const e = (cause ?? {}) as AwsErrorLike;
    const transient = isTransientS3Error(cause);
    const hint = hintFor(operation, location, e);
    const what = [e.name ?? "Error", e.$metadata?.httpStatusCode ? `HTTP ${e.$metadata.httpStatusCode}` : e.code].filter(Boolean).join(", ");
    const attempts = e.$metadata?.attempts ? ` after ${e.$metadata.attempts} attempt${e.$metadata.attempts === 1 ? "" : "s"}` : "";
    super(`S3 ${operation} ${formatS3Uri(location)} failed${attempts} (${what}: ${e.message ?? String(cause)}); ${hint}`);
    this.name = "S3Fault";
    this.transient = transient;
    this.hint = hint;
    this.httpStatus = transient ? 503 : 500;
  }
}

/** Runs one S3 operation; a failure becomes an S3Fault naming it. */
async function attempt<T>(operation: string, location: S3Location, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof S3Fault) throw error;
    throw new S3Fault(operation, location, error);
  }
}

async function readBody(body: AsyncIterable<Uint8Array>, into: Uint8Array, label: string): Promise<number> {
  let offset = 0;
  for await (const chunk of body) {
    if (offset + chunk.length > into.length) throw new Error(`${label}: more bytes than its Content-Length (${into.length})`);
    into.set(chunk, offset);
    offset += chunk.length;
  }
  return offset;
}

/** Reads a whole object into a Uint8Array that owns its ArrayBuffer (so it can be transferred). */
export async function getObjectBytes(client: S3Client, location: S3Location): Promise<Uint8Array> {
  return attempt("GetObject", location, async () => {
    const response = await client.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key }));
    const length = response.ContentLength;
    if (length === undefined || !response.Body) throw new Error(`${s3Uri(location)}: response has no body or Content-Length`);
    const bytes = new Uint8Array(length);
    const received = await readBody(response.Body as AsyncIterable<Uint8Array>, bytes, s3Uri(location));
    if (received !== length) throw new Error(`${s3Uri(location)}: received ${received} of ${length} bytes`);
    return bytes;
  });
}

export interface ObjectInfo {
  key: string;
  size: number;
}

export async function listObjects(client: S3Client, bucket: string, prefix: string): Promise<ObjectInfo[]> {
  return attempt("ListObjectsV2", { bucket, key: prefix }, async () => {
    const objects: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      for (const item of page.Contents ?? []) objects.push({ key: item.Key!, size: item.Size ?? 0 });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return objects;
  });
}

export interface ObjectHead {
  size: number;
  etag: string;
  metadata: Record<string, string>;
}

export async function headObject(client: S3Client, location: S3Location): Promise<ObjectHead | undefined> {
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: location.bucket, Key: location.key }));
    return { size: head.ContentLength ?? 0, etag: head.ETag ?? "", metadata: head.Metadata ?? {} };
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw new S3Fault("HeadObject", location, error);
  }
}

/** 8 MiB (lib-storage's default is 5 MiB): four in flight keep a step's upload fast and hold 32 MiB, not 64. */
const PART_SIZE = 8 * 1024 * 1024;

/** Multipart upload (lib-storage; each part retried by the SDK); small bodies go up in one PUT. */
export async function uploadBytes(
  client: S3Client,
  location: S3Location,
  body: Uint8Array | string | Readable,
  options: { contentType: string; metadata?: Record<string, string> },
): Promise<void> {
  const upload = new Upload({
    client,
    params: { Bucket: location.bucket, Key: location.key, Body: body, ContentType: options.contentType, Metadata: options.metadata },
    partSize: PART_SIZE,
    queueSize: 4,
    leavePartsOnError: false,
  });
  await attempt("PutObject", location, () => upload.done());
}

/** Multipart upload streamed from the local file `path` (only the parts in flight are in memory). */
export async function uploadFile(
  client: S3Client,
  location: S3Location,
  path: string,
  options: { contentType: string; metadata?: Record<string, string> },
): Promise<void> {
  const body = createReadStream(path);
  try {
    await uploadBytes(client, location, body, options);
  } finally {
    body.destroy();
  }
}

/**
 * Downloads an object of known size to `path` with parallel ranged GETs, writing each range at its
 * offset; `onProgress` gets the bytes done so far. With `ifMatch` (the ETag the size came from) a
 * replacement of the object during the download fails it (412) instead of mixing two versions.
 */
export async function downloadRanged(
  client: S3Client,
  location: S3Location,
  path: string,
  size: number,
  options: { rangeBytes: number; concurrency: number; onProgress(done: number): void; ifMatch?: string },
): Promise<void> {
  const file = await open(path, "w");
  try {
    await file.truncate(size);
    const ranges: Array<[number, number]> = [];
    for (let start = 0; start < size; start += options.rangeBytes) ranges.push([start, Math.min(size, start + options.rangeBytes) - 1]);
    let next = 0;
    let done = 0;
    const worker = async () => {
      while (next < ranges.length) {
        const [start, end] = ranges[next++];
        await attempt(`GetObject (bytes ${start}-${end})`, location, async () => {
          const response = await client.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key, Range: `bytes=${start}-${end}`, IfMatch: options.ifMatch }));
          let position = start;
          for await (const chunk of response.Body as AsyncIterable<Uint8Array>) {
            if (position + chunk.length > end + 1) throw new Error(`${s3Uri(location)}: range ${start}-${end} returned too many bytes`);
            await file.write(chunk, 0, chunk.length, position);
            position += chunk.length;
          }
          if (position !== end + 1) throw new Error(`${s3Uri(location)}: range ${start}-${end} returned ${position - start} bytes`);
        });
        done += end + 1 - start;
        options.onProgress(done);
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.concurrency, ranges.length) }, worker));
  } finally {
    await file.close();
  }
}

export async function deleteObject(client: S3Client, location: S3Location): Promise<void> {
  await attempt("DeleteObject", location, () => client.send(new DeleteObjectCommand({ Bucket: location.bucket, Key: location.key })));
}

/** Deletes the keys (a few at a time), each a DeleteObject. */
export async function deleteObjects(client: S3Client, bucket: string, keys: readonly string[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < keys.length) await deleteObject(client, { bucket, key: keys[next++] });
  };
  await Promise.all(Array.from({ length: Math.min(8, keys.length) }, worker));
}
