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

/**
 * Downloads the six files into `cacheDir`. Returns the manifest (when the prefix has one) and, for
 * each file in `later`, its download still running (the other files are in place when it returns).
 */
async function download(client: S3Client, uri: string, cacheDir: string, log: Logger, deferrable: readonly string[]): Promise<{ manifest?: ModelsManifest; later: Map<string, Promise<void>> }> {
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
  // Only with a manifest: it gives the fingerprint the SHA-256 of files not downloaded yet.
  const deferred = manifest ? heads.filter(({ name }) => deferrable.includes(name)) : [];
  for (const file of heads.filter((h) => !deferred.includes(h))) await downloadOne(client, file, cacheDir, log);
  const later = new Map<string, Promise<void>>();
  // One after the other, in stage order: the next stage's weights are the first needed.
  let previous: Promise<void> = Promise.resolve();
  for (const file of deferred) {
    const current = previous.catch(() => undefined).then(() => downloadOne(client, file, cacheDir, log));
    later.set(file.name, current);
    previous = current;
  }
  return { manifest, later };
}

async function downloadOne(client: S3Client, { name, location, head }: { name: string; location: { bucket: string; key: string }; head: { size: number } }, cacheDir: string, log: Logger): Promise<void> {
  const target = join(cacheDir, name);
  if ((await sizeOf(target)) === head.size) {
    log.info({ file: name, bytes: head.size }, "model file already in cache");
    return;
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

/** The six model files as the server uses them. */
export interface ModelFolder {
  dir: string;
  /**
   * Sizes and SHA-256 of the six files (recorded in every manifest and request fingerprint), checked
   * against fuxi-models.json; a file still downloading has the manifest's values, checked on arrival.
   */
  files: ModelFile[];
  /** Weights files still downloading when the folder was handed over (prefix mode with fuxi-models.json). */
  downloading: string[];
  /** Resolves when `stage`'s files are in `dir` and match; rejects with a ModelFileError naming the file. */
  stageReady(stage: number): Promise<void>;
  /** Settles when every download has arrived and matched. */
  complete: Promise<void>;
}

/**
 * The six files, checked (graphs read without weights, sizes and SHA-256 against fuxi-models.json):
 * from FUXI_MODEL_DIR when complete, else downloaded from FUXI_MODEL_S3_URI. With a fuxi-models.json
 * at the prefix and without keepAllStages, the medium and long weights keep downloading after this
 * returns, while the first stage serves (/ping healthy, the input downloading, short running); the
 * engine waits for a stage's files before it loads it (`stageReady`).
 */
export async function prepareModelFiles(config: RuntimeConfig, client: () => S3Client, log: Logger): Promise<ModelFolder> {
  if (await hasAllFiles(config.modelDir)) return checkedFolder(config.modelDir, new Map());
  if (config.modelS3Uri === undefined) {
    const missing = [];
    for (const name of MODEL_FILES) if (!((await sizeOf(join(config.modelDir, name))) ?? 0)) missing.push(name);
    throw new ModelFileError(missing.join(", "), `missing or empty in FUXI_MODEL_DIR=${config.modelDir}, and FUXI_MODEL_S3_URI is not set`);
  }
  log.info({ from: config.modelS3Uri, to: config.modelCacheDir }, "FUXI_MODEL_DIR lacks model files; downloading");
  const deferrable = config.keepAllStages ? [] : STAGE_NAMES.slice(1);
  const { manifest, later } = await download(client(), config.modelS3Uri, config.modelCacheDir, log, deferrable);
  const arrivals = new Map<string, Promise<void>>();
  for (const [name, downloaded] of later) {
    const checked = downloaded.then(async () => {
      const faults = manifestMismatches(manifest!, [{ file: name, bytes: (await sizeOf(join(config.modelCacheDir, name))) ?? 0, sha256: await sha256OfFile(join(config.modelCacheDir, name)) }]);
      if (faults.length > 0) throw faults[0];
    }, (error: unknown) => {
      throw error instanceof ModelFileError ? error : new ModelFileError(name, `download failed: ${(error as Error).message}`);
    });
    checked.catch(() => undefined); // raised where the stage is needed (stageReady) and through `complete`
    arrivals.set(name, checked);
  }
  return checkedFolder(config.modelCacheDir, arrivals, manifest);
}

async function checkedFolder(dir: string, arrivals: Map<string, Promise<void>>, manifest?: ModelsManifest): Promise<ModelFolder> {
  const recordedSizes = Object.fromEntries((manifest?.files ?? []).filter((f) => arrivals.has(f.file)).map((f) => [f.file, f.bytes]));
  await checkModelGraphs(dir, recordedSizes); // every stage's graph (signature, external data) read without weights, before hashing and loading
  const present = await describeModelFiles(dir, [...arrivals.keys()]);
  const files = MODEL_FILES.map((name) => present.find((f) => f.file === name) ?? manifest!.files.find((f) => f.file === name)!);
  const complete = Promise.all(arrivals.values()).then(() => undefined);
  complete.catch(() => undefined); // may settle before the server listens to it; never an unhandled rejection
  return {
    dir,
    files,
    downloading: [...arrivals.keys()],
    stageReady: (stage) => arrivals.get(STAGE_NAMES[stage]!) ?? Promise.resolve(),
    complete,
  };
}

/**
 * Sizes and SHA-256 of the six files but `skip` (streamed; recorded in every manifest and request
 * fingerprint), checked against the folder's fuxi-models.json when it has one (ModelFileError naming each mismatch).
 */
export async function describeModelFiles(dir: string, skip: readonly string[] = []): Promise<ModelFile[]> {
  const manifest = await readManifest(dir);
  const files = await Promise.all(
    MODEL_FILES.filter((file) => !skip.includes(file)).map(async (file) => {
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
export async function graphFaults(dir: string, grid: Grid | null = null, recordedSizes: Record<string, number> = {}): Promise<ModelFileError[]> {
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
    for (const fault of externalDataFaults(graph, stage, (await sizeOf(join(dir, stage))) ?? recordedSizes[stage])) faults.push(new ModelFileError(/truncated\?\)$/.test(fault) ? stage : onnx, fault));
  }
  return faults;
}

/**
 * graphFaults as one ModelFileError naming every faulty file, or nothing (`recordedSizes`: the
 * fuxi-models.json sizes of weights files still downloading): /ping is healthy only when
 * every stage's graph, including those loaded later in the run, has FuXi's signature.
 */
export async function checkModelGraphs(dir: string, recordedSizes: Record<string, number> = {}): Promise<void> {
  const faults = await graphFaults(dir, null, recordedSizes);
  if (faults.length > 0) throw combined(faults);
}
