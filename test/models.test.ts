// `npm run models` (verify, upload, fuxi-models.json) against s3rver on loopback, with stand-in models at
// FuXi's full 721x1440 shape (the graphs carry the shape; their weights files are a few hundred bytes)
// and planted faults; the runtime's check of the files against fuxi-models.json.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { appendFile, cp, mkdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { LOCAL_CREDENTIALS, LOCAL_REGION, startLocalS3, type LocalS3 } from "../tools/local-s3";
import { editOnnxModel, writeStandinModels } from "../tools/standin-model";
import { ModelsFault, parseModelsTarget, uploadModels, verifyModels, type VerifyReport } from "../tools/models";
import { describeModelFiles, graphFaults, MODELS_MANIFEST, ModelFileError, parseModelsManifest } from "../runtime/src/model-store";
import { MODEL_FILES } from "../runtime/src/contract";
import { readOnnxGraph, readOnnxGraphFile, type ByteSource } from "../runtime/src/onnx-graph";
import { REPO_ROOT, http, startRuntimeChild, tempDir } from "./support/runtime-harness";

const run = promisify(execFile);
const FULL = { lat: 721, lon: 1440 };
const BUCKET = "fuxi-weights";
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

function faultsOf(report: VerifyReport, file: string): string[] {
  return report.files.find((f) => f.file === file)!.faults;
}

/** A client that counts UploadPart requests and can abort the upload after `abortAfter` of them. */
function countingClient(s3: LocalS3, abortAfter?: number): { client: S3Client; parts: () => number; signal: AbortSignal } {
  const controller = new AbortController();
  let parts = 0;
  const client = new S3Client({ endpoint: s3.endpoint, region: LOCAL_REGION, forcePathStyle: true, credentials: LOCAL_CREDENTIALS, requestChecksumCalculation: "WHEN_REQUIRED" });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === "UploadPartCommand") {
        parts++;
        if (abortAfter !== undefined && parts > abortAfter) controller.abort(new Error("interrupted by the test"));
      }
      return next(args);
    },
    { step: "initialize" },
  );
  return { client, parts: () => parts, signal: controller.signal };
}

describe("npm run models", function () {
  this.timeout(180_000);
  let work: string;
  let good: string;
  let s3: LocalS3;
  let stateDir: string;

  before(async () => {
    work = await tempDir("models");
    good = join(work, "good");
    await writeStandinModels(good, FULL);
    stateDir = join(work, "upload-state");
    s3 = await startLocalS3({ buckets: [BUCKET] });
  });
  after(async () => {
    await s3?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function variant(name: string, plant: (dir: string) => Promise<void>): Promise<string> {
    const dir = join(work, name);
    await cp(good, dir, { recursive: true });
    await plant(dir);
    return dir;
  }

  describe("ONNX graph reader", () => {
    it("reads FuXi's signature from the stand-in at full shape", async () => {
      const graph = await readOnnxGraphFile(join(good, "short.onnx"));
      assert.deepEqual(graph.inputs, [
        { name: "input", type: "float32", dims: [1, 2, 70, 721, 1440] },
        { name: "temb", type: "float32", dims: [1, 12] },
      ]);
      assert.deepEqual(graph.outputs, [{ name: "output", type: "float32", dims: [1, 2, 70, 721, 1440] }]);
      assert.deepEqual(graph.externalData.map((r) => [r.tensor, r.location, r.offset, r.length]), [
        ["offsets", "short", 0, 280],
        ["scale", "short", 512, 4],
        ["temb_weight", "short", 576, 8],
      ]);
    });

    it("skips embedded weights without reading them (64 MiB of raw_data, under 1 MiB read)", async () => {
      const big = editOnnxModel(await readFile(join(good, "short.onnx")), (model) => {
        model.graph.initializer.push({ name: "embedded", dims: [16, 1024, 1024], data_type: 1, raw_data: Buffer.alloc(64 * 1024 * 1024, 7) });
      });
      let bytesRead = 0;
      const source: ByteSource = {
        size: big.length,
        read: async (offset, length) => {
          const chunk = big.subarray(offset, Math.min(big.length, offset + length));
          bytesRead += chunk.length;
          return chunk;
        },
        close: async () => undefined,
      };
      const graph = await readOnnxGraph(source);
      assert.equal(graph.initializers, 7);
      assert.equal(graph.inputs.length, 2, "an initializer is not a graph input");
      assert.ok(bytesRead < 1024 * 1024, `${bytesRead} bytes read of ${big.length}`);
    });
  });

  describe("verify", () => {
    it("passes the six good files, printing sizes and SHA-256", async () => {
      const report = await verifyModels({ kind: "folder", path: good });
      assert.ok(report.ok, JSON.stringify(report, null, 1));
      for (const file of MODEL_FILES) {
        const bytes = await readFile(join(good, file));
        const verdict = report.files.find((f) => f.file === file)!;
        assert.equal(verdict.bytes, bytes.length);
        assert.equal(verdict.sha256, sha256(bytes));
      }
    });

    it("names a missing file", async () => {
      const dir = await variant("missing", (d) => rm(join(d, "medium")));
      const report = await verifyModels({ kind: "folder", path: dir });
      assert.equal(report.ok, false);
      assert.deepEqual(faultsOf(report, "medium"), ["missing"]);
      assert.deepEqual(report.files.filter((f) => f.faults.length > 0).map((f) => f.file), ["medium"]);
    });

    it("names a truncated weights file and the tensor that lies past its end", async () => {
      const dir = await variant("truncated", (d) => truncate(join(d, "long"), 540));
      const report = await verifyModels({ kind: "folder", path: dir });
      assert.deepEqual(faultsOf(report, "long"), ["540 bytes, but tensor temb_weight of long.onnx lies at bytes 576..584 (truncated?)"]);
      assert.deepEqual(faultsOf(report, "long.onnx"), []);
    });

    it("names a wrong input shape (and the output that follows it)", async () => {
      const dir = await variant("shape", async (d) => {
        await writeStandinModels(join(d, "reduced"), { lat: 720, lon: 1440 });
        await cp(join(d, "reduced", "short.onnx"), join(d, "short.onnx"));
        await rm(join(d, "reduced"), { recursive: true });
      });
      const faults = faultsOf(await verifyModels({ kind: "folder", path: dir }), "short.onnx");
      assert.ok(faults.includes(`input "input" has shape [1,2,70,720,1440], expected [1,2,70,721,1440]`), faults.join("\n"));
    });

    it("names a wrong output count", async () => {
      const dir = await variant("outputs", async (d) => {
        const edited = editOnnxModel(await readFile(join(d, "medium.onnx")), (model) => model.graph.output.push({ ...model.graph.output[0], name: "extra" }));
        await writeFile(join(d, "medium.onnx"), edited);
      });
      assert.deepEqual(faultsOf(await verifyModels({ kind: "folder", path: dir }), "medium.onnx"), ["has 2 outputs (medium_output, extra), expected one"]);
    });

    it("names a file that is not ONNX, and every fault at once on the command line (exit 1)", async () => {
      const dir = await variant("several", async (d) => {
        await writeFile(join(d, "short.onnx"), "<html>not a model</html>\n");
        await rm(join(d, "medium"));
        await truncate(join(d, "long"), 100);
      });
      const report = await verifyModels({ kind: "folder", path: dir });
      assert.match(faultsOf(report, "short.onnx")[0]!, /^not an ONNX model: /);
      const cli = await run(process.execPath, ["--import", "tsx", join(REPO_ROOT, "tools", "models-cli.ts"), "verify", dir], { cwd: REPO_ROOT }).catch((e) => e);
      assert.equal(cli.code, 1);
      assert.match(cli.stdout, /short\.onnx: not an ONNX model/);
      assert.match(cli.stdout, /medium: missing/);
      assert.match(cli.stdout, /long: 100 bytes, but tensor offsets of long\.onnx/);
      assert.match(cli.stdout, /verdict: \d+ faults in short\.onnx, medium, long/);
    });

    it("rejects an S3 URI that is neither a prefix nor a .tar.gz", () => {
      assert.throws(() => parseModelsTarget("s3://bucket/fuxi.zip"), /expected a prefix ending in \/ .* or a key ending in \.tar\.gz/);
    });
  });

  describe("upload", () => {
    it("refuses to upload files that fail verify, and uploads nothing", async () => {
      const dir = await variant("refused", (d) => truncate(join(d, "short"), 10));
      await assert.rejects(uploadModels(dir, `s3://${BUCKET}/refused/`, { client: s3.client, stateDir }), (e: unknown) => e instanceof ModelsFault && /nothing was uploaded/.test(e.message));
      const report = await verifyModels({ kind: "prefix", bucket: BUCKET, prefix: "refused/" }, { client: s3.client });
      assert.ok(report.files.every((f) => f.faults.includes("missing")));
    });

    it("uploads the six files and fuxi-models.json, which verify then checks in S3", async () => {
      const result = await uploadModels(good, `s3://${BUCKET}/fuxi/v1/`, { client: s3.client, stateDir });
      assert.equal(result.uris.length, 7);
      const manifest = parseModelsManifest(await (await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `fuxi/v1/${MODELS_MANIFEST}` }))).Body!.transformToString());
      for (const file of MODEL_FILES) {
        const bytes = await readFile(join(good, file));
        assert.deepEqual(manifest.files.find((f) => f.file === file), { file, bytes: bytes.length, sha256: sha256(bytes) });
      }
      const report = await verifyModels(parseModelsTarget(`s3://${BUCKET}/fuxi/v1/`), { client: s3.client });
      assert.ok(report.ok && report.manifest, JSON.stringify(report, null, 1));
    });

    it("verify in S3 names a file replaced after the upload (size and SHA-256 against fuxi-models.json)", async () => {
      await uploadModels(good, `s3://${BUCKET}/replaced/`, { client: s3.client, stateDir });
      const short = await readFile(join(good, "short"));
      short[3] ^= 0xff;
      await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "replaced/short", Body: short }));
      const report = await verifyModels(parseModelsTarget(`s3://${BUCKET}/replaced/`), { client: s3.client });
      assert.equal(report.ok, false);
      assert.match(faultsOf(report, "short")[0]!, new RegExp(`^SHA-256 ${sha256(short)} differs from [0-9a-f]{64} recorded in fuxi-models\\.json$`));
    });

    it("resumes an interrupted upload without sending its finished parts again", async () => {
      // 26 MiB of weights (the stand-in's tensors sit in the first 704 bytes), 5 MiB parts: 6 parts.
      const dir = await variant("large", async (d) => truncate(join(d, "medium"), 26 * 1024 * 1024));
      const first = countingClient(s3, 3);
      const destination = `s3://${BUCKET}/resumed/`;
      await assert.rejects(uploadModels(dir, destination, { client: first.client, stateDir, partSize: 5 * 1024 * 1024, concurrency: 2, signal: first.signal }), /interrupted by the test|aborted/i);
      const sentBefore = first.parts();
      const second = countingClient(s3);
      const result = await uploadModels(dir, destination, { client: second.client, stateDir, partSize: 5 * 1024 * 1024, concurrency: 2 });
      assert.ok(result.partsSkipped >= 2, `${result.partsSkipped} parts skipped (${sentBefore} requests before the interruption)`);
      assert.equal(second.parts() + result.partsSkipped, 6, "medium's 6 parts: only those not finished before were sent");
      const uploaded = await (await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "resumed/medium" }))).Body!.transformToByteArray();
      assert.equal(sha256(uploaded), sha256(await readFile(join(dir, "medium"))));
      assert.ok((await verifyModels(parseModelsTarget(destination), { client: s3.client })).ok);
      const again = await uploadModels(dir, destination, { client: s3.client, stateDir, partSize: 5 * 1024 * 1024 });
      assert.equal(again.partsSent, 0, "everything is already there");
    });

    it("--archive: one .tar.gz with the six files and fuxi-models.json that tar reads and verify checks", async () => {
      const result = await uploadModels(good, `s3://${BUCKET}/packed/`, { client: s3.client, stateDir, archive: "fuxi-v1.tar.gz" });
      assert.deepEqual(result.uris, [`s3://${BUCKET}/packed/fuxi-v1.tar.gz`]);
      const report = await verifyModels(parseModelsTarget(`s3://${BUCKET}/packed/fuxi-v1.tar.gz`), { client: s3.client });
      assert.ok(report.ok && report.manifest, JSON.stringify(report, null, 1));
      const archive = join(work, "fuxi-v1.tar.gz");
      await writeFile(archive, await (await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "packed/fuxi-v1.tar.gz" }))).Body!.transformToByteArray());
      const out = join(work, "extracted");
      await mkdir(out);
      await run("tar", ["-xzf", archive, "-C", out]);
      for (const file of MODEL_FILES) assert.equal(sha256(await readFile(join(out, file))), sha256(await readFile(join(good, file))), file);
      assert.deepEqual(await describeModelFiles(out), parseModelsManifest(await readFile(join(out, MODELS_MANIFEST), "utf8")).files, "the runtime accepts the extracted folder");
    });

    it("--archive resumes too: the regenerated archive's finished parts are not sent again", async () => {
      // 12 MiB of incompressible weights (the tensors stay in the first 704 bytes): a 3-part archive at 5 MiB.
      const dir = await variant("archive-large", async (d) => appendFile(join(d, "long"), randomBytes(12 * 1024 * 1024)));
      const options = { stateDir, archive: "big.tar.gz", partSize: 5 * 1024 * 1024, concurrency: 1 };
      const first = countingClient(s3, 1);
      await assert.rejects(uploadModels(dir, `s3://${BUCKET}/packed/`, { ...options, client: first.client, signal: first.signal }), /interrupted by the test|aborted/i);
      const second = countingClient(s3);
      const result = await uploadModels(dir, `s3://${BUCKET}/packed/`, { ...options, client: second.client });
      assert.ok(result.partsSkipped >= 1, `${result.partsSkipped} parts skipped`);
      assert.equal(second.parts() + result.partsSkipped, 3);
      assert.ok((await verifyModels(parseModelsTarget(`s3://${BUCKET}/packed/big.tar.gz`), { client: s3.client })).ok);
    });

    it("verify names a missing archive", async () => {
      await assert.rejects(verifyModels(parseModelsTarget(`s3://${BUCKET}/packed/absent.tar.gz`), { client: s3.client }), /absent\.tar\.gz does not exist/);
    });
  });

  describe("the runtime checks the files against fuxi-models.json", () => {
    const grid = { lat: 5, lon: 8 };

    it("graphFaults (for /ping health) finds no fault in good stand-ins and names a faulty graph's file", async () => {
      const dir = join(work, "runtime-graphs");
      await writeStandinModels(dir, grid);
      assert.deepEqual(await graphFaults(dir), []);
      await writeFile(join(dir, "long.onnx"), editOnnxModel(await readFile(join(dir, "long.onnx")), (model) => (model.graph.input[1].type.tensor_type.shape.dim[1].dim_value = 13)));
      await truncate(join(dir, "short"), 8);
      const faults = await graphFaults(dir);
      assert.deepEqual(faults.map((f) => f.file).sort(), ["long.onnx", "short", "short", "short"]);
      assert.ok(faults.some((f) => /input "temb" has shape \[1,13\], expected \[1,12\]/.test(f.fault)));
      // Names are the graph's own (one of FuXi's graphs names its output 15379): a renamed input is no fault.
      const renamed = join(work, "runtime-graphs-renamed");
      await writeStandinModels(renamed, grid);
      await writeFile(join(renamed, "long.onnx"), editOnnxModel(await readFile(join(renamed, "long.onnx")), (model) => (model.graph.input[1].name = "time")));
      assert.deepEqual(await graphFaults(renamed), []);
    });

    it("describeModelFiles names the file whose SHA-256 differs", async () => {
      const dir = join(work, "runtime-mismatch");
      await writeStandinModels(dir, grid);
      const files = await describeModelFiles(dir);
      const forged = files.map((f) => (f.file === "long" ? { ...f, sha256: "0".repeat(64) } : f));
      await writeFile(join(dir, MODELS_MANIFEST), JSON.stringify({ format: "fuxi-models/1", files: forged }));
      await assert.rejects(describeModelFiles(dir), (e: unknown) => e instanceof ModelFileError && e.file === "long" && /recorded in fuxi-models\.json/.test(e.message));
    });

    it("/ping names the mismatching file; a prefix with a wrong size fails before downloading", async () => {
      const dir = join(work, "runtime-s3");
      await writeStandinModels(dir, grid);
      const wrong = (await describeModelFiles(dir)).map((f) => (f.file === "medium.onnx" ? { ...f, bytes: f.bytes + 1 } : f));
      for (const file of MODEL_FILES) await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `runtime/${file}`, Body: await readFile(join(dir, file)) }));
      await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `runtime/${MODELS_MANIFEST}`, Body: JSON.stringify({ format: "fuxi-models/1", files: wrong }) }));
      const cache = join(work, "runtime-cache");
      const runtime = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: join(work, "absent"), FUXI_MODEL_S3_URI: `s3://${BUCKET}/runtime/`, FUXI_MODEL_CACHE_DIR: cache });
      try {
        const failure = await runtime.waitForLog((line) => line.level === 50);
        assert.equal(failure.file, "medium.onnx");
        const ping = await http("GET", `${runtime.url}/ping`);
        assert.equal(ping.status, 503);
        assert.match(ping.body, /model file medium\.onnx: has \d+ bytes but fuxi-models\.json records \d+/);
        assert.ok(!runtime.logs.some((line) => line.msg === "model file downloaded"), "nothing downloaded");
      } finally {
        await runtime.stop();
      }
    });
  });
});
