/**
 * A multipart upload that survives an interruption: the upload id and every finished part are recorded
 * in a journal file (stateDir), and a rerun with the same content sends only the parts not recorded.
 * An object already at the key with the same content identity (x-amz-meta-fuxi-identity) is not sent at all.
 *
 * Hand-written over the AWS SDK's multipart commands because @aws-sdk/lib-storage cannot resume an
 * upload. The journal is local rather than discovered with ListMultipartUploads/ListParts so that it
 * works the same on every S3-compatible server (s3rver has neither). Each part carries Content-MD5, so
 * S3 rejects a part damaged on the way; CompleteMultipartUpload checks every part's ETag.
 */
import { createHash } from "node:crypto";
import { mkdir, open, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";

export interface UploadProgress {
  file: string;
  done: number;
  total: number;
}

interface CommonArgs {
  client: S3Client;
  bucket: string;
  key: string;
  /** Anything that changes when the content changes (a file's SHA-256); stored as object metadata. */
  identity: string;
  metadata: Record<string, string>;
  partSize: number;
  concurrency: number;
  stateDir?: string;
  signal?: AbortSignal;
  /** Bytes of this object done so far (sent or already there). */
  onProgress?(bytes: number): void;
}

export type ResumableUploadArgs = CommonArgs & ({ path: string; bytes: number } | { body: Readable });

export interface ResumableUploadResult {
  partsSent: number;
  partsSkipped: number;
  /** The object was already there with the same identity. */
  alreadyThere: boolean;
}

interface Journal {
  bucket: string;
  key: string;
  identity: string;
  partSize: number;
  uploadId: string;
  parts: Record<string, { etag: string; md5: string; bytes: number }>;
}

export function defaultStateDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "fuxi-models", "uploads");
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

function isNoSuchUpload(error: unknown): boolean {
  return error instanceof S3ServiceException && error.name === "NoSuchUpload";
}

async function readJournal(path: string): Promise<Journal | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as Journal;
  } catch {
    return undefined;
  }
}

/** Parts of a stream, `size` bytes each (the last one shorter). */
async function* streamParts(body: Readable, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let length = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    let rest = chunk;
    while (length + rest.length >= size) {
      const take = size - length;
      pending.push(rest.subarray(0, take));
      yield Buffer.concat(pending);
      rest = rest.subarray(take);
      pending = [];
      length = 0;
    }
    if (rest.length > 0) {
      pending.push(rest);
      length += rest.length;
    }
  }
  if (length > 0) yield Buffer.concat(pending);
}

export async function resumableUpload(args: ResumableUploadArgs): Promise<ResumableUploadResult> {
  const { client, bucket, key, partSize } = args;
  const identity = sha256(args.identity);
  const metadata = { ...args.metadata, "fuxi-identity": identity };
  const uri = `s3://${bucket}/${key}`;

  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    if (head.Metadata?.["fuxi-identity"] === identity && (!("path" in args) || head.ContentLength === args.bytes)) {
      args.onProgress?.("path" in args ? args.bytes : (head.ContentLength ?? 0));
      return { partsSent: 0, partsSkipped: 0, alreadyThere: true };
    }
  } catch (error) {
    if (!(error instanceof S3ServiceException && (error.name === "NotFound" || error.$metadata.httpStatusCode === 404))) throw error;
  }

  if ("path" in args && args.bytes <= partSize) {
    const body = await readFile(args.path);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentMD5: createHash("md5").update(body).digest("base64"), Metadata: metadata }), { abortSignal: args.signal });
    args.onProgress?.(body.length);
    return { partsSent: 1, partsSkipped: 0, alreadyThere: false };
  }

  const stateDir = args.stateDir ?? defaultStateDir();
  await mkdir(stateDir, { recursive: true });
  const journalPath = join(stateDir, `${sha256(uri)}.json`);
  let journal = await readJournal(journalPath);
  if (!journal || journal.bucket !== bucket || journal.key !== key || journal.identity !== identity || journal.partSize !== partSize) {
    const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, Metadata: metadata }));
    journal = { bucket, key, identity, partSize, uploadId: created.UploadId!, parts: {} };
  }
  const state = journal;
  let saving = Promise.resolve();
  const save = () => (saving = saving.then(async () => {
    await writeFile(`${journalPath}.tmp`, JSON.stringify(state));
    await rename(`${journalPath}.tmp`, journalPath);
  }));
  await save();

  let done = 0;
  let partsSent = 0;
  let partsSkipped = 0;
  const advance = (bytes: number) => {
    done += bytes;
    args.onProgress?.(done);
  };

  const file = "path" in args ? await open(args.path, "r") : undefined;
  /** Yields [partNumber, bytes | undefined]; undefined: recorded in the journal, not read again. */
  async function* parts(): AsyncGenerator<[number, Buffer | undefined, number]> {
    if (file && "path" in args) {
      for (let n = 1, offset = 0; offset < args.bytes; n++, offset += partSize) {
        const length = Math.min(partSize, args.bytes - offset);
        // Same identity (the file's SHA-256): a recorded part holds exactly these bytes.
        if (state.parts[n]?.bytes === length) {
          yield [n, undefined, length];
          continue;
        }
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await file.read(buffer, 0, length, offset);
        if (bytesRead !== length) throw new Error(`${args.path}: read ${bytesRead} of ${length} bytes at ${offset} (file changed since it was verified?)`);
        yield [n, buffer, length];
      }
    } else if ("body" in args) {
      let n = 0;
      for await (const buffer of streamParts(args.body, partSize)) {
        n++;
        const recorded = state.parts[n];
        // A regenerated part must have the bytes of the recorded one (deterministic archive); otherwise re-send it.
        yield [n, recorded && recorded.md5 === createHash("md5").update(buffer).digest("hex") ? undefined : buffer, buffer.length];
      }
    }
  }

  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  let lastPart = 0;
  try {
    for await (const [n, buffer, length] of parts()) {
      lastPart = n;
      if (args.signal?.aborted) throw args.signal.reason ?? new Error("aborted");
      if (buffer === undefined) {
        partsSkipped++;
        advance(length);
        continue;
      }
      const md5 = createHash("md5").update(buffer);
      const md5Hex = md5.copy().digest("hex");
      const task = client
        .send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: state.uploadId, PartNumber: n, Body: buffer, ContentMD5: md5.digest("base64") }), { abortSignal: args.signal })
        .then(async (response) => {
          state.parts[n] = { etag: response.ETag!, md5: md5Hex, bytes: length };
          partsSent++;
          advance(length);
          await save();
        })
        .catch((error: unknown) => {
          failure ??= error;
        })
        .finally(() => inFlight.delete(task));
      inFlight.add(task);
      while (inFlight.size >= args.concurrency) await Promise.race(inFlight);
      if (failure) break;
    }
    await Promise.all(inFlight);
    if (failure) throw failure;
    if (args.signal?.aborted) throw args.signal.reason ?? new Error("aborted");
    // Parts past the end (a longer earlier attempt) are not part of this object.
    const numbers = Object.keys(state.parts).map(Number).filter((n) => n <= lastPart).sort((a, b) => a - b);
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: state.uploadId,
        MultipartUpload: { Parts: numbers.map((n) => ({ PartNumber: n, ETag: state.parts[n]!.etag })) },
      }),
    );
  } catch (error) {
    await Promise.allSettled(inFlight);
    await saving;
    if (isNoSuchUpload(error)) {
      await rm(journalPath, { force: true });
      throw new Error(`${uri}: the interrupted multipart upload ${state.uploadId} no longer exists (aborted, e.g. by a lifecycle rule); run the command again to start this file over`);
    }
    throw error;
  } finally {
    await file?.close();
  }
  await saving;
  await rm(journalPath, { force: true });
  return { partsSent, partsSkipped, alreadyThere: false };
}
