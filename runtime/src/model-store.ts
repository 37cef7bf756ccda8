// The six model files: from FUXI_MODEL_DIR when complete, else downloaded from FUXI_MODEL_S3_URI.
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Logger } from "pino";
import { externalDataFaults, MODELS_MANIFEST, signatureFaults, type Grid } from "./model-check";
import { OnnxFormatError, readOnnxGraphFile, type OnnxGraphSummary } from "./onnx-graph";
import type { RuntimeConfig } from "./config";
import { MODEL_FILES, parseS3Uri, STAGE_NAMES } from "./contract";
import { downloadRanged, getObjectBytes, headObject, s3Uri } from "./s3";
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

export { MODELS_MANIFEST };

export interface ModelsManifest {
  format: "fuxi-models/1";
  files: ModelFile[];
}

export function renderModelsManifest(files: readonly ModelFile[]): string {
  const manifest: ModelsManifest = { format: "fuxi-models/1", files: MODEL_FILES.map((name) => files.find((f) => f.file === name)!) };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** Parses fuxi-models.json; throws ModelFileError naming it and the fault. */
export function parseModelsManifest(text: string): ModelsManifest {
  const fault = (what: string) => new ModelFileError(MODELS_MANIFEST, what);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw fault(`is not JSON (${(error as Error).message})`);
  }
  const doc = value as Partial<ModelsManifest>;
  if (doc?.format !== "fuxi-models/1") throw fault(`format is ${JSON.stringify(doc?.format)}, expected "fuxi-models/1"`);
  if (!Array.isArray(doc.files)) throw fault("has no files list");
  const files: ModelFile[] = [];
  for (const name of MODEL_FILES) {
    const entry = doc.files.find((f) => f?.file === name);
    if (!entry) throw fault(`does not list ${name}`);
    if (!Number.isSafeInteger(entry.bytes) || entry.bytes < 0) throw fault(`${name}: bytes is ${JSON.stringify(entry.bytes)}`);
    if (typeof entry.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(entry.sha256)) throw fault(`${name}: sha256 is ${JSON.stringify(entry.sha256)}`);
    files.push({ file: name, bytes: entry.bytes, sha256: entry.sha256 });
  }
  return { format: "fuxi-models/1", files };
}

/** Every file whose size (or, when given, SHA-256) differs from the manifest, as ModelFileErrors. */
export function manifestMismatches(manifest: ModelsManifest, actual: readonly { file: string; bytes: number; sha256?: string }[]): ModelFileError[] {
  const faults: ModelFileError[] = [];
  for (const recorded of manifest.files) {
    const found = actual.find((a) => a.file === recorded.file);
    if (!found) continue;
    if (found.bytes !== recorded.bytes) {
      faults.push(new ModelFileError(recorded.file, `has ${found.bytes} bytes but ${MODELS_MANIFEST} records ${recorded.bytes}`));
    } else if (found.sha256 !== undefined && found.sha256 !== recorded.sha256) {
      faults.push(new ModelFileError(recorded.file, `SHA-256 ${found.sha256} differs from ${recorded.sha256} recorded in ${MODELS_MANIFEST}`));
    }
  }
  return faults;
}

/** One ModelFileError naming every faulty file (the first fault's text when there is one). */
function combined(faults: ModelFileError[]): ModelFileError {
  if (faults.length === 1) return faults[0]!;
  return new ModelFileError([...new Set(faults.map((f) => f.file))].join(", "), faults.map((f) => `${f.file} ${f.fault}`).join("; "));
}

async function readManifest(dir: string): Promise<ModelsManifest | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, MODELS_MANIFEST), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  return parseModelsManifest(text);
}

/** Size of a regular file, or undefined when there is none. */
export async function sizeOf(path: string): Promise<number | undefined> {
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
  // fuxi-models.json first: a size that differs from it fails before gigabytes are downloaded.
  const manifestLocation = { bucket: prefix.bucket, key: prefix.key + MODELS_MANIFEST };
  let manifest: ModelsManifest | undefined;
  if (await headObject(client, manifestLocation)) {
    const text = Buffer.from(await getObjectBytes(client, manifestLocation)).toString("utf8");
    manifest = parseModelsManifest(text);
    await writeFile(join(cacheDir, MODELS_MANIFEST), text);
  } else {
    await rm(join(cacheDir, MODELS_MANIFEST), { force: true });
    log.warn({ manifest: s3Uri(manifestLocation) }, "no fuxi-models.json next to the model files: their sizes and SHA-256 are not checked (write it with `npm run models -- upload`)");
  }
  const heads = [];
  for (const name of MODEL_FILES) {
    const location = { bucket: prefix.bucket, key: prefix.key + name };
    const head = await headObject(client, location);
    if (!head) throw new ModelFileError(name, `${s3Uri(location)} does not exist`);
    if (head.size === 0) throw new ModelFileError(name, `${s3Uri(location)} is empty`);
    heads.push({ name, location, head });
  }
  if (manifest) {
    const faults = manifestMismatches(manifest, heads.map(({ name, head }) => ({ file: name, bytes: head.size })));
    if (faults.length > 0) throw combined(faults);
  }
  for (const { name, location, head } of heads) {
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

/**
 * Sizes and SHA-256 of the six files (streamed; recorded in every manifest and request fingerprint),
 * checked against the folder's fuxi-models.json when it has one (ModelFileError naming each mismatch).
 */
export async function describeModelFiles(dir: string): Promise<ModelFile[]> {
  const manifest = await readManifest(dir);
  const files = await Promise.all(
    MODEL_FILES.map(async (file) => {
      const path = join(dir, file);
      const bytes = await sizeOf(path);
      if (bytes === undefined) throw new ModelFileError(file, `${path} is missing`);
      return { file, bytes, sha256: await sha256OfFile(path) };
    }),
  );
  const faults = manifest ? manifestMismatches(manifest, files) : [];
  if (faults.length > 0) throw combined(faults);
  return files;
}

/**
 * FuXi's graph rules (model-check.ts) on the six files in `dir`, read without loading weights: every
 * fault as a ModelFileError naming its file. `grid` null accepts any grid (stand-ins on reduced grids).
 */
export async function graphFaults(dir: string, grid: Grid | null = null): Promise<ModelFileError[]> {
  const faults: ModelFileError[] = [];
  for (const stage of STAGE_NAMES) {
    const onnx = `${stage}.onnx`;
    let graph: OnnxGraphSummary;
    try {
      graph = await readOnnxGraphFile(join(dir, onnx));
    } catch (error) {
      if (!(error instanceof OnnxFormatError)) throw error;
      faults.push(new ModelFileError(onnx, error.message));
      continue;
    }
    for (const fault of signatureFaults(graph, grid)) faults.push(new ModelFileError(onnx, fault));
    for (const fault of externalDataFaults(graph, stage, await sizeOf(join(dir, stage)))) faults.push(new ModelFileError(/truncated\?\)$/.test(fault) ? stage : onnx, fault));
  }
  return faults;
}

/**
 * graphFaults as one ModelFileError naming every faulty file, or nothing: /ping is healthy only when
 * every stage's graph, including those loaded later in the run, has FuXi's signature.
 */
export async function checkModelGraphs(dir: string): Promise<void> {
  const faults = await graphFaults(dir);
  if (faults.length > 0) throw combined(faults);
}
