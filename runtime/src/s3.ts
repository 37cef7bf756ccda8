// S3 access for the runtime: whole-object reads into one buffer, ranged parallel downloads to
// disk, multipart uploads (lib-storage) from memory or streamed from a file, listings.
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import type { Readable } from "node:stream";
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import type { S3Location } from "./request";

/** Endpoint, region, credentials and checksum settings come from the standard SDK variables. */
export function createS3Client(env: Record<string, string | undefined>): S3Client {
  return new S3Client({ forcePathStyle: env.S3_FORCE_PATH_STYLE?.toLowerCase() === "true" });
}

export function s3Uri(location: S3Location): string {
  return `s3://${location.bucket}/${location.key}`;
}

export function isNotFound(error: unknown): boolean {
  if (!(error instanceof S3ServiceException)) return false;
  return error.name === "NoSuchKey" || error.name === "NotFound" || error.$metadata.httpStatusCode === 404;
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
  const response = await client.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key }));
  const length = response.ContentLength;
  if (length === undefined || !response.Body) throw new Error(`${s3Uri(location)}: response has no body or Content-Length`);
  const bytes = new Uint8Array(length);
  const received = await readBody(response.Body as AsyncIterable<Uint8Array>, bytes, s3Uri(location));
  if (received !== length) throw new Error(`${s3Uri(location)}: received ${received} of ${length} bytes`);
  return bytes;
}

export interface ObjectInfo {
  key: string;
  size: number;
}

export async function listObjects(client: S3Client, bucket: string, prefix: string): Promise<ObjectInfo[]> {
  const objects: ObjectInfo[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const item of page.Contents ?? []) objects.push({ key: item.Key!, size: item.Size ?? 0 });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects;
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
    throw error;
  }
}

const PART_SIZE = 16 * 1024 * 1024;

/** Multipart upload (lib-storage); small bodies go up in one PUT. */
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
  await upload.done();
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
        const response = await client.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key, Range: `bytes=${start}-${end}`, IfMatch: options.ifMatch }));
        let position = start;
        for await (const chunk of response.Body as AsyncIterable<Uint8Array>) {
          if (position + chunk.length > end + 1) throw new Error(`${s3Uri(location)}: range ${start}-${end} returned too many bytes`);
          await file.write(chunk, 0, chunk.length, position);
          position += chunk.length;
        }
        if (position !== end + 1) throw new Error(`${s3Uri(location)}: range ${start}-${end} returned ${position - start} bytes`);
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
  await client.send(new DeleteObjectCommand({ Bucket: location.bucket, Key: location.key }));
}
