import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { S3Client } from "@aws-sdk/client-s3";
// s3rver ships no types.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const S3rver = require("s3rver");

/** An S3-compatible server on loopback (s3rver), for tests, benchmarks and the local pipeline. */
export interface LocalS3 {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  /** A client configured for this server (path style, checksums only when required). */
  client: S3Client;
  /** Environment that points the AWS SDK of a child process (or of code under test) at this server. */
  env: Record<string, string>;
  /** Object-created events as s3rver emits them (keys NOT URL-encoded, no filter applied). */
  onObjectCreated(listener: (record: S3rverEventRecord) => void): void;
  stop(): Promise<void>;
}

export interface S3rverEventRecord {
  eventName: string;
  s3: { bucket: { name: string }; object: { key: string; size: number; eTag: string; sequencer: string; versionId?: string } };
}

export interface LocalS3Options {
  buckets: string[];
  /** Folder for the objects; a fresh temporary folder (removed on stop) when omitted. */
  directory?: string;
  port?: number;
}

export const LOCAL_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
export const LOCAL_REGION = "cn-northwest-1";

/**
 * s3rver ignores conditional headers. Real S3 (also in the China regions: docs.amazonaws.cn,
 * AmazonS3/latest/userguide/conditional-writes.html) honours `If-None-Match: *` on PutObject: it
 * answers 412 PreconditionFailed when the key already exists, and lets exactly one of several
 * concurrent writers of a new key win. This middleware adds that to s3rver, serialising conditional
 * writes per key so the check and the write are atomic as S3 makes them. Hand-written: no
 * maintained S3 emulator for Node implements conditional writes.
 */
function conditionalPutMiddleware(store: { existsObject(bucket: string, key: string): Promise<boolean> }) {
  const tails = new Map<string, Promise<void>>();
  return async (ctx: { method: string; path: string; querystring: string; get(name: string): string; status: number; type: string; body: unknown }, next: () => Promise<void>) => {
    if (ctx.method !== "PUT" || ctx.get("if-none-match") !== "*" || /(^|&)(uploadId|partNumber)=/.test(ctx.querystring)) return next();
    const match = /^\/([^/]+)\/(.+)$/.exec(ctx.path);
    if (!match) return next();
    const [bucket, key] = [match[1], decodeURIComponent(match[2])];
    const id = `${bucket}/${key}`;
    const before = tails.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = before.then(() => mine);
    tails.set(id, tail);
    await before;
    try {
      if (await store.existsObject(bucket, key)) {
        ctx.status = 412;
        ctx.type = "application/xml";
        ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition><Key>${key.replace(/[<>&]/g, "")}</Key></Error>`;
        return;
      }
      await next();
    } finally {
      release();
      if (tails.get(id) === tail) tails.delete(id);
    }
  };
}

export async function startLocalS3(options: LocalS3Options): Promise<LocalS3> {
  const ownDirectory = options.directory === undefined;
  const directory = options.directory ?? mkdtempSync(join(tmpdir(), "fuxi-s3-"));
  const server = new S3rver({
    address: "127.0.0.1",
    port: options.port ?? 0,
    silent: true,
    directory,
    configureBuckets: options.buckets.map((name) => ({ name })),
  });
  // Before s3rver's own middleware: Koa composes the array when the server starts listening.
  (server.middleware as unknown[]).unshift(conditionalPutMiddleware(server.store));
  const address: AddressInfo = await server.run();
  const endpoint = `http://127.0.0.1:${address.port}`;
  const client = new S3Client({
    endpoint,
    region: LOCAL_REGION,
    forcePathStyle: true,
    credentials: LOCAL_CREDENTIALS,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const env: Record<string, string> = {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_REQUEST_CHECKSUM_CALCULATION: "WHEN_REQUIRED",
    AWS_RESPONSE_CHECKSUM_VALIDATION: "WHEN_REQUIRED",
    S3_FORCE_PATH_STYLE: "true",
  };
  return {
    endpoint,
    client,
    env,
    onObjectCreated(listener) {
      server.on("event", (event: { Records: S3rverEventRecord[] }) => {
        for (const record of event.Records) listener(record);
      });
    },
    async stop() {
      client.destroy();
      await server.close();
      if (ownDirectory) rmSync(directory, { recursive: true, force: true });
    },
  };
}
