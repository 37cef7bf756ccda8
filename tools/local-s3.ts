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
