/**
 * `npm run models`: checks FuXi's six model files and uploads them (the project's setup_models.sh).
 *
 * verify: each stage's .onnx is read as a graph (runtime/src/onnx-graph.ts: no weights loaded) and checked
 * against FuXi's signature; every external-data reference must lie inside the stage's weights file; every
 * file is hashed (SHA-256). Sources: a folder, an S3 prefix (ranged reads), or a .tar.gz in S3 (streamed).
 * upload: verify, then resumable parallel multipart uploads (tools/resumable-upload.ts), then fuxi-models.json.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, open, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { Header, Parser, type ReadEntry } from "tar";
import { MODEL_FILES, STAGE_NAMES } from "../runtime/src/contract";
import { sha256OfFile } from "../runtime/src/sha256";
import { externalDataFaults, FUXI_GRID, signatureFaults } from "../runtime/src/model-check";
import { manifestMismatches, MODELS_MANIFEST, parseModelsManifest, renderModelsManifest, sizeOf, type ModelFile, type ModelsManifest } from "../runtime/src/model-store";
import { fileByteSource, OnnxFormatError, readOnnxGraph, type ByteSource, type OnnxGraphSummary } from "../runtime/src/onnx-graph";
import { headObject, s3Uri } from "../runtime/src/s3";
import { resumableUpload, type UploadProgress } from "./resumable-upload";

export type ModelsTarget =
  | { kind: "folder"; path: string }
  | { kind: "prefix"; bucket: string; prefix: string }
  | { kind: "archive"; bucket: string; key: string };

/** `dir`, `s3://bucket/prefix/` or `s3://bucket/key.tar.gz`. */
export function parseModelsTarget(text: string): ModelsTarget {
  const s3 = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.*)$/.exec(text);
  if (!s3) {
    if (text.startsWith("s3:")) throw new Error(`${JSON.stringify(text)} is not an S3 URI; expected s3://bucket/prefix/ or s3://bucket/key.tar.gz (bucket names are 3-63 lowercase letters, digits, dots and hyphens)`);
    return { kind: "folder", path: text };
  }
  const [, bucket, key] = s3 as unknown as [string, string, string];
  if (key === "" || key.endsWith("/")) return { kind: "prefix", bucket, prefix: key };
  if (key.endsWith(".tar.gz")) return { kind: "archive", bucket, key };
  throw new Error(`${text}: expected a prefix ending in / (the six files) or a key ending in .tar.gz`);
}

export function describeTarget(target: ModelsTarget): string {
  if (target.kind === "folder") return target.path;
  return target.kind === "prefix" ? `s3://${target.bucket}/${target.prefix}` : `s3://${target.bucket}/${target.key}`;
}

export interface FileVerdict {
  file: string;
  bytes: number | undefined;
  sha256: string | undefined;
  /** Empty: the file is good. */
  faults: string[];
}

export interface VerifyReport {
  target: string;
  files: FileVerdict[];
  /** Whether fuxi-models.json was found (and compared). */
  manifest: boolean;
  /** Faults not tied to one of the six files (fuxi-models.json, extra archive entries). */
  otherFaults: string[];
  ok: boolean;
}

/** What verify needs of one stage: the .onnx bytes, and the weights file's size and hash. */
interface StageFiles {
  onnx: { source: () => Promise<ByteSource>; bytes: number; sha256: () => Promise<string> } | undefined;
  weights: { bytes: number; sha256: () => Promise<string> } | undefined;
}

interface ModelsSource {
  stage(stage: string): Promise<StageFiles>;
  manifest(): Promise<string | undefined>;
  otherFaults(): string[];
  close(): Promise<void>;
}

function bufferSource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, read: async (offset, length) => bytes.subarray(offset, Math.min(bytes.length, offset + length)), close: async () => undefined };
}

function folderSource(dir: string): ModelsSource {
  return {
    async stage(stage) {
      const onnxPath = join(dir, `${stage}.onnx`);
      const weightsPath = join(dir, stage);
      const [onnxBytes, weightsBytes] = await Promise.all([sizeOf(onnxPath), sizeOf(weightsPath)]);
      return {
        onnx: onnxBytes === undefined ? undefined : { bytes: onnxBytes, source: () => fileByteSource(onnxPath), sha256: () => sha256OfFile(onnxPath) },
        weights: weightsBytes === undefined ? undefined : { bytes: weightsBytes, sha256: () => sha256OfFile(weightsPath) },
      };
    },
    async manifest() {
      const size = await sizeOf(join(dir, MODELS_MANIFEST));
      if (size === undefined) return undefined;
      const handle = await open(join(dir, MODELS_MANIFEST), "r");
      try {
        return await handle.readFile("utf8");
      } finally {
        await handle.close();
      }
    },
    otherFaults: () => [],
    close: async () => undefined,
  };
}

const S3_READ_CHUNK = 1024 * 1024;

async function sha256Object(client: S3Client, bucket: string, key: string): Promise<string> {
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash("sha256");
  for await (const chunk of response.Body as AsyncIterable<Uint8Array>) hash.update(chunk);
  return hash.digest("hex");
}

/** Ranged reads of one S3 object, one request per 1 MiB the graph reader asks for. */
function s3ByteSource(client: S3Client, bucket: string, key: string, size: number): ByteSource {
  return {
    size,
    async read(offset, length) {
      const end = Math.min(size, offset + Math.max(length, S3_READ_CHUNK)) - 1;
      if (offset > end) return new Uint8Array(0);
      const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${offset}-${end}` }));
      return response.Body!.transformToByteArray();
    },
    close: async () => undefined,
  };
}

function prefixSource(client: S3Client, bucket: string, prefix: string): ModelsSource {
  return {
    async stage(stage) {
      const [onnxHead, weightsHead] = await Promise.all([headObject(client, { bucket, key: `${prefix}${stage}.onnx` }), headObject(client, { bucket, key: prefix + stage })]);
      return {
        onnx: onnxHead && {
          bytes: onnxHead.size,
          source: async () => s3ByteSource(client, bucket, `${prefix}${stage}.onnx`, onnxHead.size),
          sha256: () => sha256Object(client, bucket, `${prefix}${stage}.onnx`),
        },
        weights: weightsHead && { bytes: weightsHead.size, sha256: () => sha256Object(client, bucket, prefix + stage) },
      };
    },
    async manifest() {
      if (!(await headObject(client, { bucket, key: prefix + MODELS_MANIFEST }))) return undefined;
      const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: prefix + MODELS_MANIFEST }));
      return response.Body!.transformToString("utf8");
    },
    otherFaults: () => [],
    close: async () => undefined,
  };
}

/** .onnx entries larger than this are not held in memory (FuXi's .onnx files keep their weights outside). */
const MAX_ARCHIVED_ONNX_BYTES = 512 * 1024 * 1024;

/** Streams the archive once: hashes every entry, keeps the .onnx files and fuxi-models.json in memory. */
async function archiveSource(client: S3Client, bucket: string, key: string): Promise<ModelsSource> {
  const uri = `s3://${bucket}/${key}`;
  const head = await headObject(client, { bucket, key });
  if (!head) throw new Error(`${uri} does not exist`);
  const entries = new Map<string, { bytes: number; sha256: string; content?: Uint8Array }>();
  const faults: string[] = [];
  const parser = new Parser({ strict: true });
  parser.on("entry", (entry: ReadEntry) => {
    const name = entry.path.replace(/^(\.\/)+/, "");
    if (entry.type === "Directory" && name === "") return entry.resume();
    if (entry.type !== "File" || !(MODEL_FILES.includes(name) || name === MODELS_MANIFEST)) {
      faults.push(`archive entry ${JSON.stringify(entry.path)} (${entry.type}) is not one of the six model files or ${MODELS_MANIFEST}`);
      return entry.resume();
    }
    const keep = name.endsWith(".onnx") || name === MODELS_MANIFEST;
    const hash = createHash("sha256");
    const chunks: Buffer[] = [];
    let bytes = 0;
    entry.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
      if (keep && bytes <= MAX_ARCHIVED_ONNX_BYTES) chunks.push(chunk);
    });
    entry.on("end", () => {
      entries.set(name, { bytes, sha256: hash.digest("hex"), content: keep && bytes <= MAX_ARCHIVED_ONNX_BYTES ? Buffer.concat(chunks) : undefined });
    });
  });
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  try {
    await pipeline(response.Body as Readable, createGunzip(), parser as unknown as NodeJS.WritableStream);
  } catch (error) {
    throw new Error(`${uri} is not a readable .tar.gz: ${(error as Error).message}`);
  }
  return {
    async stage(stage) {
      const onnx = entries.get(`${stage}.onnx`);
      const weights = entries.get(stage);
      return {
        onnx: onnx && {
          bytes: onnx.bytes,
          sha256: async () => onnx.sha256,
          source: async () => {
            if (!onnx.content) throw new OnnxFormatError(`is ${onnx.bytes} bytes, too large to check inside an archive (FuXi's .onnx files keep weights in the weights file)`);
            return bufferSource(onnx.content);
          },
        },
        weights: weights && { bytes: weights.bytes, sha256: async () => weights.sha256 },
      };
    },
    manifest: async () => {
      const entry = entries.get(MODELS_MANIFEST);
      return entry?.content && Buffer.from(entry.content).toString("utf8");
    },
    otherFaults: () => faults,
    close: async () => undefined,
  };
}

export interface VerifyOptions {
  /** Needed for S3 targets. */
  client?: S3Client;
  /** FuXi's 721x1440 unless given (tests of reduced grids). */
  grid?: { lat: number; lon: number };
}

async function openSource(target: ModelsTarget, client: S3Client | undefined): Promise<ModelsSource> {
  if (target.kind === "folder") return folderSource(target.path);
  if (!client) throw new Error(`${describeTarget(target)}: an S3 client is needed`);
  return target.kind === "prefix" ? prefixSource(client, target.bucket, target.prefix) : archiveSource(client, target.bucket, target.key);
}

async function verifyStage(source: ModelsSource, stage: string, grid: { lat: number; lon: number }): Promise<[FileVerdict, FileVerdict]> {
  const files = await source.stage(stage);
  const onnx: FileVerdict = { file: `${stage}.onnx`, bytes: files.onnx?.bytes, sha256: undefined, faults: [] };
  const weights: FileVerdict = { file: stage, bytes: files.weights?.bytes, sha256: undefined, faults: [] };
  if (!files.onnx) onnx.faults.push("missing");
  if (!files.weights) weights.faults.push("missing");
  else if (files.weights.bytes === 0) weights.faults.push("empty");
  if (files.onnx) {
    let graph: OnnxGraphSummary | undefined;
    const bytes = await files.onnx.source();
    try {
      graph = await readOnnxGraph(bytes);
    } catch (error) {
      if (!(error instanceof OnnxFormatError)) throw error;
      onnx.faults.push(error.message);
    } finally {
      await bytes.close();
    }
    if (graph) {
      onnx.faults.push(...signatureFaults(graph, grid));
      if (graph.externalData.length === 0) onnx.faults.push(`keeps no weights in "${stage}" (no external data): not one of FuXi's exported stages`);
      // A reference past the end of the weights file is the weights file's fault (truncated), the others the graph's.
      for (const fault of externalDataFaults(graph, stage, files.weights?.bytes)) (/truncated\?\)$/.test(fault) ? weights : onnx).faults.push(fault);
    }
  }
  [onnx.sha256, weights.sha256] = await Promise.all([files.onnx?.sha256(), files.weights?.sha256()]);
  return [onnx, weights];
}

/** Checks the six files at `target` (see the module comment); never throws for a fault in the files. */
export async function verifyModels(target: ModelsTarget, options: VerifyOptions = {}): Promise<VerifyReport> {
  const source = await openSource(target, options.client);
  try {
    const grid = options.grid ?? FUXI_GRID;
    const files = (await Promise.all(STAGE_NAMES.map((stage) => verifyStage(source, stage, grid)))).flat();
    const otherFaults = [...source.otherFaults()];
    const manifestText = await source.manifest();
    if (manifestText !== undefined) {
      let manifest: ModelsManifest | undefined;
      try {
        manifest = parseModelsManifest(manifestText);
      } catch (error) {
        otherFaults.push((error as Error).message);
      }
      if (manifest) {
        const present = files.filter((f): f is FileVerdict & { bytes: number; sha256: string } => f.bytes !== undefined && f.sha256 !== undefined);
        for (const mismatch of manifestMismatches(manifest, present)) files.find((f) => f.file === mismatch.file)!.faults.push(mismatch.fault);
      }
    }
    const ok = files.every((f) => f.faults.length === 0) && otherFaults.length === 0;
    return { target: describeTarget(target), files, manifest: manifestText !== undefined, otherFaults, ok };
  } finally {
    await source.close();
  }
}

/** The report as the CLI prints it: one line per file, then every fault. */
export function formatReport(report: VerifyReport): string {
  const lines = [`${report.target}:`];
  const width = Math.max(...report.files.map((f) => f.file.length));
  for (const f of report.files) {
    const size = f.bytes === undefined ? "-" : f.bytes.toLocaleString("en-US");
    lines.push(`  ${f.file.padEnd(width)}  ${size.padStart(16)} bytes  sha256 ${f.sha256 ?? "-".padEnd(64)}  ${f.faults.length === 0 ? "ok" : "FAULT"}`);
    for (const fault of f.faults) lines.push(`      ${f.file}: ${fault}`);
  }
  for (const fault of report.otherFaults) lines.push(`  ${fault}`);
  const count = report.files.reduce((n, f) => n + f.faults.length, 0) + report.otherFaults.length;
  lines.push(
    report.ok
      ? `verdict: ok, the six files are FuXi's stages${report.manifest ? ` and match ${MODELS_MANIFEST}` : ` (no ${MODELS_MANIFEST} here to compare with)`}`
      : `verdict: ${count} fault${count === 1 ? "" : "s"} in ${report.files.filter((f) => f.faults.length > 0).map((f) => f.file).concat(report.otherFaults.length > 0 ? ["the rest"] : []).join(", ")}`,
  );
  return lines.join("\n");
}

export interface UploadOptions {
  client: S3Client;
  /** Upload one .tar.gz under this name (below the destination prefix) instead of the six files. */
  archive?: string;
  /** Parts in flight at once (default 8) and part size in bytes (default 64 MiB). */
  concurrency?: number;
  partSize?: number;
  /** Where interrupted uploads are remembered (default ~/.cache/fuxi-models/uploads). */
  stateDir?: string;
  grid?: { lat: number; lon: number };
  /** Called with the verify report before anything is uploaded (also when it fails). */
  onVerified?(report: VerifyReport): void;
  onProgress?(progress: UploadProgress): void;
  signal?: AbortSignal;
}

export interface UploadResult {
  report: VerifyReport;
  /** What was written: the six files and fuxi-models.json, or the archive. */
  uris: string[];
  /** Parts sent in this run (parts of an interrupted earlier run are not sent again). */
  partsSent: number;
  partsSkipped: number;
}

export class ModelsFault extends Error {
  constructor(readonly report: VerifyReport) {
    super(`${report.target}: verify found faults; nothing was uploaded`);
    this.name = "ModelsFault";
  }
}

/** A deterministic tar of the files (fixed mode and mtime), so an interrupted archive upload can resume. */
async function* tarEntries(dir: string, names: readonly string[], extra: { name: string; content: Buffer }): AsyncGenerator<Buffer> {
  const header = (path: string, size: number) => {
    const block = Buffer.alloc(512);
    new Header({ path, mode: 0o644, size, mtime: new Date(0), uid: 0, gid: 0, uname: "", gname: "", type: "File" }).encode(block, 0);
    return block;
  };
  const padding = (size: number) => Buffer.alloc((512 - (size % 512)) % 512);
  for (const name of names) {
    const size = (await stat(join(dir, name))).size;
    yield header(name, size);
    for await (const chunk of createReadStream(join(dir, name), { highWaterMark: 4 * 1024 * 1024 })) yield chunk as Buffer;
    yield padding(size);
  }
  yield header(extra.name, extra.content.length);
  yield extra.content;
  yield padding(extra.content.length);
  yield Buffer.alloc(1024);
}

/** Verifies `dir`, then uploads it to `s3://bucket/prefix/` (see the module comment). Throws ModelsFault when verify fails. */
export async function uploadModels(dir: string, destination: string, options: UploadOptions): Promise<UploadResult> {
  const target = parseModelsTarget(destination);
  if (target.kind !== "prefix") throw new Error(`${destination}: upload goes to an S3 prefix ending in / (with --archive NAME.tar.gz to upload one archive there)`);
  if (options.archive !== undefined && (!options.archive.endsWith(".tar.gz") || options.archive.includes("/"))) {
    throw new Error(`--archive ${options.archive}: expected a file name ending in .tar.gz`);
  }
  const report = await verifyModels({ kind: "folder", path: dir }, { grid: options.grid });
  options.onVerified?.(report);
  if (!report.ok) throw new ModelsFault(report);
  const files: ModelFile[] = report.files.map((f) => ({ file: f.file, bytes: f.bytes!, sha256: f.sha256! }));
  const manifest = renderModelsManifest(files);
  const common = { client: options.client, bucket: target.bucket, concurrency: options.concurrency ?? 8, partSize: options.partSize ?? 64 * 1024 * 1024, stateDir: options.stateDir, signal: options.signal };
  let partsSent = 0;
  let partsSkipped = 0;
  const total = files.reduce((n, f) => n + f.bytes, 0);
  let done = 0;
  const progress = (file: string) => (bytes: number) => options.onProgress?.({ file, done: done + bytes, total });

  if (options.archive !== undefined) {
    const key = target.prefix + options.archive;
    // Level 1: float32 weights barely compress; the archive only has to be a .tar.gz for SageMaker.
    const gzip = createGzip({ level: 1 });
    const body = Readable.from(tarEntries(dir, MODEL_FILES, { name: MODELS_MANIFEST, content: Buffer.from(manifest) })).pipe(gzip).pipe(new PassThrough());
    const identity = `tar.gz level 1 of ${manifest}`;
    const result = await resumableUpload({ ...common, key, body, identity, metadata: { "fuxi-models": createHash("sha256").update(manifest).digest("hex") }, onProgress: progress(options.archive) });
    return { report, uris: [`s3://${target.bucket}/${key}`], partsSent: result.partsSent, partsSkipped: result.partsSkipped };
  }

  const uris: string[] = [];
  for (const file of files) {
    const key = target.prefix + file.file;
    const result = await resumableUpload({ ...common, key, path: join(dir, file.file), bytes: file.bytes, identity: file.sha256, metadata: { sha256: file.sha256 }, onProgress: progress(file.file) });
    partsSent += result.partsSent;
    partsSkipped += result.partsSkipped;
    done += file.bytes;
    uris.push(`s3://${target.bucket}/${key}`);
  }
  // Written last: its presence says the six files above are complete.
  const manifestKey = target.prefix + MODELS_MANIFEST;
  const scratch = await mkdtemp(join(tmpdir(), "fuxi-models-"));
  try {
    await writeFile(join(scratch, MODELS_MANIFEST), manifest);
    await resumableUpload({ ...common, key: manifestKey, path: join(scratch, MODELS_MANIFEST), bytes: Buffer.byteLength(manifest), identity: manifest, metadata: {} });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  uris.push(s3Uri({ bucket: target.bucket, key: manifestKey }));
  return { report, uris, partsSent, partsSkipped };
}
