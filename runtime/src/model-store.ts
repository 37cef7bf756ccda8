// The six model files: from FUXI_MODEL_DIR when complete, else downloaded from FUXI_MODEL_S3_URI.
import { mkdir, rename, stat } from "node:fs/promises";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Logger } from "pino";
import type { RuntimeConfig } from "./config";
import { MODEL_FILES, parseS3Uri } from "./contract";
import { downloadRanged, headObject, s3Uri } from "./s3";
import { sha256OfFile } from "./sha256";


export interface ModelFile {
  file: string;
  bytes: number;
  sha256: string;
}

export class ModelFileError extends Error {
  constructor(readonly file: string, readonly fault: string) {
    super(`model file ${file}: ${fault}`);
    this.name = "ModelFileError";
  }
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

async function hasAllFiles(dir: string): Promise<boolean> {
  const sizes = await Promise.all(MODEL_FILES.map((name) => sizeOf(join(dir, name))));
  return sizes.every((size) => size !== undefined && size > 0);
}

const RANGE_BYTES = 64 * 1024 * 1024;
const RANGE_CONCURRENCY = 8;

async function download(client: S3Client, uri: string, cacheDir: string, log: Logger): Promise<void> {
  const prefix = parseS3Uri(uri);
  if (!prefix) throw new ModelFileError("(all)", `FUXI_MODEL_S3_URI ${JSON.stringify(uri)} is not an s3://bucket/prefix/ URI`);
  await mkdir(cacheDir, { recursive: true });
  for (const name of MODEL_FILES) {
    const location = { bucket: prefix.bucket, key: prefix.key + name };
    const head = await headObject(client, location);
    if (!head) throw new ModelFileError(name, `${s3Uri(location)} does not exist`);
    if (head.size === 0) throw new ModelFileError(name, `${s3Uri(location)} is empty`);
    const target = join(cacheDir, name);
    if ((await sizeOf(target)) === head.size) {
      log.info({ file: name, bytes: head.size }, "model file already in cache");
      continue;
    }
    const partial = `${target}.partial`;
    const started = performance.now();
    let lastLogged = 0;
    await downloadRanged(client, location, partial, head.size, {
      rangeBytes: RANGE_BYTES,
      concurrency: RANGE_CONCURRENCY,
      onProgress(done) {
        if (done === head.size || performance.now() - lastLogged > 5000) {
          lastLogged = performance.now();
          log.info({ file: name, done, bytes: head.size, percent: Math.round((100 * done) / head.size) }, "downloading model file");
        }
      },
    });
    const written = await sizeOf(partial);
    if (written !== head.size) throw new ModelFileError(name, `downloaded ${written} bytes but ${s3Uri(location)} has ${head.size}`);
    await rename(partial, target);
    log.info({ file: name, bytes: head.size, ms: Math.round(performance.now() - started) }, "model file downloaded");
  }
}

/** Returns the folder holding all six files, downloading them first when needed. */
export async function locateModelFiles(config: RuntimeConfig, client: () => S3Client, log: Logger): Promise<string> {
  if (await hasAllFiles(config.modelDir)) return config.modelDir;
  if (config.modelS3Uri === undefined) {
    const missing = [];
    for (const name of MODEL_FILES) if (!((await sizeOf(join(config.modelDir, name))) ?? 0)) missing.push(name);
    throw new ModelFileError(missing.join(", "), `missing or empty in FUXI_MODEL_DIR=${config.modelDir}, and FUXI_MODEL_S3_URI is not set`);
  }
  log.info({ from: config.modelS3Uri, to: config.modelCacheDir }, "FUXI_MODEL_DIR lacks model files; downloading");
  await download(client(), config.modelS3Uri, config.modelCacheDir, log);
  return config.modelCacheDir;
}

/** Sizes and SHA-256 of the six files (streamed; recorded in every manifest and request fingerprint). */
export async function describeModelFiles(dir: string): Promise<ModelFile[]> {
  return Promise.all(
    MODEL_FILES.map(async (file) => {
      const path = join(dir, file);
      const bytes = await sizeOf(path);
      if (bytes === undefined) throw new ModelFileError(file, `${path} is missing`);
      return { file, bytes, sha256: await sha256OfFile(path) };
    }),
  );
}
