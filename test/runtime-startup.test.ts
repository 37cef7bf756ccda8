// Start-up paths of the runtime: arguments, configuration, the model store (local folder, S3
// download, missing and corrupt files), the compiled entry point and the Dockerfile's contract.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { startLocalS3, type LocalS3 } from "../tools/local-s3";
import { editOnnxModel, writeStandinModels } from "../tools/standin-model";
import { downloadRanged } from "../runtime/src/s3";
import { MODEL_FILES, RUNTIME_LOG_EVENTS, RUNTIME_PROCESS_ENV, runtimeLogEvent, type Manifest } from "../runtime/src/contract";
import { describeModelFiles, MODELS_MANIFEST, renderModelsManifest } from "../runtime/src/model-store";
import { projectNodeVersion } from "../tools/runtime-image";
import { COMPILED_ENTRY, REPO_ROOT, forecastRequest, http, startRuntimeChild, tempDir, writeInputWithXarray, type RuntimeChild } from "./support/runtime-harness";

const run = promisify(execFile);
const grid = { lat: 5, lon: 8 };

describe("runtime start-up", function () {
  this.timeout(180_000);
  let work: string;
  let models: string;
  let s3: LocalS3;

  before(async () => {
    work = await tempDir("runtime-startup");
    models = join(work, "models");
    await writeStandinModels(models, grid);
    s3 = await startLocalS3({ buckets: ["fuxi-models", "fuxi-data"] });
  });
  after(async () => {
    await s3?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("rejects arguments other than `serve` with the usage line", async () => {
    for (const args of [["bogus"], [], ["serve", "extra"]]) {
      const runtime = await startRuntimeChild({ FUXI_MODEL_DIR: models }, args);
      assert.equal(await runtime.exited, 64, `exit code for ${JSON.stringify(args)}`);
      assert.match(runtime.stderr(), /usage: main serve/);
    }
  });

  it("fails fast when the providers include cpu without FUXI_ALLOW_CPU", async () => {
    const runtime = await startRuntimeChild({ FUXI_MODEL_DIR: models, FUXI_PROVIDERS: "cuda,cpu", FUXI_ALLOW_CPU: "false" });
    assert.equal(await runtime.exited, 78);
    assert.match(runtime.stderr(), /FUXI_PROVIDERS: includes cpu but FUXI_ALLOW_CPU is not true/);
  });

  it("fails fast without the stack's lanes (FUXI_DATA_BUCKET, FUXI_INPUT_PREFIX, FUXI_OUTPUT_PREFIX)", async () => {
    const runtime = await startRuntimeChild({ FUXI_MODEL_DIR: models, FUXI_DATA_BUCKET: "" });
    assert.equal(await runtime.exited, 78);
    assert.match(runtime.stderr(), /FUXI_DATA_BUCKET: must be an S3 bucket name/);
    const overlapping = await startRuntimeChild({ FUXI_MODEL_DIR: models, FUXI_OUTPUT_PREFIX: "input/results/" });
    assert.equal(await overlapping.exited, 78);
    assert.match(overlapping.stderr(), /FUXI_OUTPUT_PREFIX: "input\/results\/" overlaps FUXI_INPUT_PREFIX "input\/"/);
  });

  it("writes its named log events even when LOG_LEVEL is quieter than info", async () => {
    const runtime = await startRuntimeChild({ FUXI_MODEL_DIR: models, LOG_LEVEL: "error" });
    try {
      await runtime.waitUntilReady();
      assert.ok(runtime.logs.some((line) => line.event === RUNTIME_LOG_EVENTS.listening));
      const ready = runtime.logs.find((line) => line.event === RUNTIME_LOG_EVENTS.ready)!;
      assert.equal(ready.level, 30);
      assert.deepEqual(ready.grid, grid);
      // LOG_LEVEL still filters the lines that are not events.
      assert.deepEqual(runtime.logs.filter((line) => line.event === undefined && (line.level as number) < 50), []);
    } finally {
      await runtime.stop();
    }
  });

  it("stays unhealthy and names the files when model files are missing", async () => {
    const empty = join(work, "empty");
    await mkdir(empty);
    const runtime = await startRuntimeChild({ FUXI_MODEL_DIR: empty });
    try {
      const failure = await runtime.waitForLog((line) => line.level === 50);
      assert.match(String(failure.msg), /short\.onnx, short, medium\.onnx, medium, long\.onnx, long: missing or empty in FUXI_MODEL_DIR/);
      const ping = await http("GET", `${runtime.url}/ping`);
      assert.equal(ping.status, 503);
      assert.match(ping.body, /FUXI_MODEL_S3_URI is not set/);
      const invocation = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("x", [1])));
      assert.equal(invocation.status, 503);
    } finally {
      await runtime.stop();
    }
  });

  it("removes the scratch folders of runs whose process died, and only those", async () => {
    const scratch = join(work, "scratch-stale");
    const exited = spawnSync(process.execPath, ["-e", ""]); // a pid that no longer runs
    const dead = `run-${exited.pid}-abc123`;
    const live = `run-${process.pid}-def456`; // this test runner: alive
    for (const name of [dead, live, "not-a-run"]) {
      await mkdir(join(scratch, name), { recursive: true });
      await writeFile(join(scratch, name, "input.nc"), "left behind");
    }
    const runtime = await startRuntimeChild({ FUXI_MODEL_DIR: join(work, "no-models"), FUXI_SCRATCH_DIR: scratch });
    try {
      const removed = await runtime.waitForLog((line) => line.msg === "removed the scratch folders of runs whose process died");
      assert.deepEqual(removed.removed, [dead]);
      assert.deepEqual((await readdir(scratch)).sort(), [live, "not-a-run"].sort());
    } finally {
      await runtime.stop();
    }
  });

  it("stays unhealthy and names the file when a model is corrupt", async () => {
    const corrupt = join(work, "corrupt");
    await writeStandinModels(corrupt, grid);
    await writeFile(join(corrupt, "medium.onnx"), "this is not a protobuf");
    const runtime = await startRuntimeChild({ FUXI_MODEL_DIR: corrupt });
    try {
      const failure = await runtime.waitForLog((line) => line.level === 50);
      assert.match(String(failure.msg), /medium\.onnx: not an ONNX model/);
      assert.equal(failure.file, "medium.onnx");
      assert.equal((await http("GET", `${runtime.url}/ping`)).status, 503);
    } finally {
      await runtime.stop();
    }
  });

  it("stays unhealthy when a later stage parses but has the wrong signature, naming it, before any session is created", async () => {
    // A structural check would pass this file; the graph reader (runtime/src/onnx-graph.ts) does not.
    const wrong = join(work, "wrong-signature");
    await writeStandinModels(wrong, grid);
    await writeFile(join(wrong, "long.onnx"), editOnnxModel(await readFile(join(wrong, "long.onnx")), (model) => (model.graph.input[1].type.tensor_type.shape.dim[1].dim_value = 13)));
    const runtime = await startRuntimeChild({ FUXI_MODEL_DIR: wrong });
    try {
      const failure = await runtime.waitForLog((line) => line.level === 50);
      assert.equal(failure.file, "long.onnx");
      assert.match(String(failure.msg), /long\.onnx: input "temb" has shape \[1,13\], expected \[1,12\]/);
      assert.equal((await http("GET", `${runtime.url}/ping`)).status, 503);
      assert.ok(!runtime.logs.some((line) => line.msg === "models loaded; ready"));
    } finally {
      await runtime.stop();
    }
  });

  it("downloads the six files from FUXI_MODEL_S3_URI when FUXI_MODEL_DIR lacks them, then serves", async () => {
    for (const file of MODEL_FILES) {
      await s3.client.send(new PutObjectCommand({ Bucket: "fuxi-models", Key: `fuxi/v1/${file}`, Body: await readFile(join(models, file)) }));
    }
    const cache = join(work, "cache");
    const runtime = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: join(work, "absent"), FUXI_MODEL_S3_URI: "s3://fuxi-models/fuxi/v1/", FUXI_MODEL_CACHE_DIR: cache });
    try {
      await runtime.waitUntilReady();
      assert.equal((await http("GET", `${runtime.url}/ping`)).status, 200);
      assert.deepEqual((await readdir(cache)).sort(), [...MODEL_FILES].sort());
      for (const file of MODEL_FILES) assert.ok((await readFile(join(cache, file))).equals(await readFile(join(models, file))), `${file} downloaded intact`);
      assert.equal(runtime.logs.filter((line) => line.msg === "model file downloaded").length, 6);
      assert.ok(runtime.logs.some((line) => line.msg === "downloading model file" && line.percent === 100), "progress is logged");
    } finally {
      await runtime.stop();
    }
  });

  describe("with fuxi-models.json at the prefix: the later stages' weights arrive while the first stage serves", () => {
    const INIT = new Date("2023-10-12T06:00:00Z");
    async function uploadPrefix(prefix: string, replace: Record<string, Buffer> = {}): Promise<void> {
      const manifest = renderModelsManifest(await describeModelFiles(models));
      await s3.client.send(new PutObjectCommand({ Bucket: "fuxi-models", Key: `${prefix}${MODELS_MANIFEST}`, Body: manifest }));
      for (const file of MODEL_FILES) {
        await s3.client.send(new PutObjectCommand({ Bucket: "fuxi-models", Key: `${prefix}${file}`, Body: replace[file] ?? (await readFile(join(models, file))) }));
      }
    }
    async function postRun(runtime: RuntimeChild, runId: string) {
      const input = await writeInputWithXarray(join(work, `${runId}.nc`), { ...grid, initTime: INIT });
      await s3.client.send(new PutObjectCommand({ Bucket: "fuxi-data", Key: `input/${runId}/fuxi_input.nc`, Body: input }));
      return http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest(runId, [2, 2, 2])));
    }

    it("is healthy once the graphs and the first stage are in and checked, and the run uses the rest when it arrives", async () => {
      await uploadPrefix("deferred/");
      const cache = join(work, "cache-deferred");
      const runtime = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: join(work, "absent"), FUXI_MODEL_S3_URI: "s3://fuxi-models/deferred/", FUXI_MODEL_CACHE_DIR: cache });
      try {
        await runtime.waitUntilReady();
        const ready = runtime.logs.find((line) => runtimeLogEvent(line, RUNTIME_LOG_EVENTS.ready) !== undefined)!;
        assert.deepEqual(ready.downloading, ["medium", "long"]);
        // The fingerprint's model list is the one a complete folder gives.
        assert.deepEqual(ready.models, await describeModelFiles(models));
        const response = await postRun(runtime, "2023101206");
        assert.equal(response.status, 200, response.body);
        const manifest: Manifest = JSON.parse(response.body);
        assert.deepEqual(manifest.models, await describeModelFiles(models));
        assert.deepEqual(manifest.files.map((f) => f.stage), ["short", "short", "medium", "medium", "long", "long"]);
        for (const file of MODEL_FILES) assert.ok((await readFile(join(cache, file))).equals(await readFile(join(models, file))), `${file} downloaded intact`);
        assert.equal((await http("GET", `${runtime.url}/ping`)).status, 200);
      } finally {
        await runtime.stop();
      }
    });

    it("fails the run at the stage whose weights differ from fuxi-models.json, naming the file, and /ping says so from then on", async () => {
      const medium = await readFile(join(models, "medium"));
      const tampered = Buffer.from(medium);
      tampered[tampered.length - 1] ^= 0xff; // same size, other bytes: caught by the SHA-256 only
      await uploadPrefix("tampered/", { medium: tampered });
      const runtime = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: join(work, "absent"), FUXI_MODEL_S3_URI: "s3://fuxi-models/tampered/", FUXI_MODEL_CACHE_DIR: join(work, "cache-tampered") });
      try {
        await runtime.waitUntilReady();
        const response = await postRun(runtime, "2023101212");
        assert.ok(response.status >= 500, `${response.status} ${response.body}`);
        assert.match(response.body, /model file medium: SHA-256 [0-9a-f]{64} differs from [0-9a-f]{64} recorded in fuxi-models\.json/);
        const ping = await http("GET", `${runtime.url}/ping`);
        assert.equal(ping.status, 503);
        assert.match(ping.body, /not ready: model file medium: SHA-256/);
        const listing = await s3.client.send(new ListObjectsV2Command({ Bucket: "fuxi-data", Prefix: "output/2023101212/" }));
        assert.ok(!(listing.Contents ?? []).some((o) => o.Key!.endsWith("_SUCCESS")), "no _SUCCESS for a failed run");
      } finally {
        await runtime.stop();
      }
    });
  });

  it("names the missing object when the S3 model prefix lacks a file", async () => {
    const runtime = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: join(work, "absent"), FUXI_MODEL_S3_URI: "s3://fuxi-models/incomplete/", FUXI_MODEL_CACHE_DIR: join(work, "cache2") });
    try {
      const failure = await runtime.waitForLog((line) => line.level === 50);
      assert.match(String(failure.msg), /model file short\.onnx: s3:\/\/fuxi-models\/incomplete\/short\.onnx does not exist/);
      assert.equal(failure.file, "short.onnx");
      assert.equal((await http("GET", `${runtime.url}/ping`)).status, 503);
    } finally {
      await runtime.stop();
    }
  });

  it("assembles a file from many parallel ranged GETs", async () => {
    const body = randomBytes(100_003);
    await s3.client.send(new PutObjectCommand({ Bucket: "fuxi-models", Key: "ranged/blob", Body: body }));
    const target = join(work, "blob");
    const progress: number[] = [];
    await downloadRanged(s3.client, { bucket: "fuxi-models", key: "ranged/blob" }, target, body.length, { rangeBytes: 4096, concurrency: 6, onProgress: (done) => progress.push(done) });
    assert.ok((await readFile(target)).equals(body));
    assert.equal(progress.length, Math.ceil(body.length / 4096));
    assert.equal(progress[progress.length - 1], body.length);
  });

  it("sends If-Match with every ranged GET when given the ETag, so a replaced input fails instead of mixing versions", async () => {
    const body = randomBytes(20_000);
    const put = await s3.client.send(new PutObjectCommand({ Bucket: "fuxi-models", Key: "ranged/etag", Body: body }));
    const sent: Array<string | undefined> = [];
    // s3rver ignores If-Match (real S3 answers 412), so check what goes on the wire.
    s3.client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { headers: Record<string, string>; query?: Record<string, unknown> };
        sent.push(request.headers["if-match"]);
        return next(args);
      },
      { step: "finalizeRequest", name: "recordIfMatch" },
    );
    try {
      await downloadRanged(s3.client, { bucket: "fuxi-models", key: "ranged/etag" }, join(work, "etag"), body.length, { rangeBytes: 4096, concurrency: 3, onProgress: () => undefined, ifMatch: put.ETag });
    } finally {
      s3.client.middlewareStack.remove("recordIfMatch");
    }
    assert.equal(sent.length, Math.ceil(body.length / 4096));
    assert.ok(sent.every((value) => value === put.ETag), JSON.stringify(sent));
    assert.ok((await readFile(join(work, "etag"))).equals(body));
  });

  it("runs compiled (node dist/main.js serve, the image's ENTRYPOINT + CMD)", async () => {
    await run(process.execPath, [join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", join(REPO_ROOT, "runtime", "tsconfig.json")]);
    const rejected = await startRuntimeChild({}, ["shell"], COMPILED_ENTRY);
    assert.equal(await rejected.exited, 64);
    assert.match(rejected.stderr(), /unknown arguments \["shell"\]/);

    const input = await writeInputWithXarray(join(work, "input.nc"), { ...grid, initTime: new Date("2023-10-12T06:00:00Z") });
    await s3.client.send(new PutObjectCommand({ Bucket: "fuxi-data", Key: "input/compiled/fuxi_input.nc", Body: input }));
    const runtime = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: models }, ["serve"], COMPILED_ENTRY);
    try {
      await runtime.waitUntilReady();
      const response = await http("POST", `${runtime.url}/invocations`, JSON.stringify(forecastRequest("compiled", [1, 1])));
      assert.equal(response.status, 200, response.body);
      assert.deepEqual(JSON.parse(response.body).files.map((f: { file: string }) => f.file), ["006.nc", "012.nc"]);
    } finally {
      assert.equal(await runtime.stop("SIGTERM"), 0);
    }
  });
});

describe("runtime Dockerfile", () => {
  let dockerfile: string;
  let instructions: Array<{ op: string; args: string }>;
  before(async () => {
    dockerfile = await readFile(join(REPO_ROOT, "runtime", "Dockerfile"), "utf8");
    instructions = dockerfile
      .replace(/\\\n/g, " ")
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith("#"))
      .map((line) => ({ op: line.split(/\s+/)[0].toUpperCase(), args: line.slice(line.split(/\s+/)[0].length).trim() }));
  });

  it("takes the CUDA base image as a build argument and is multi-stage", () => {
    assert.equal(instructions[0].op, "ARG");
    assert.match(instructions[0].args, /^BASE_IMAGE=\S*cuda\S*cudnn\S*runtime/);
    const froms = instructions.filter((i) => i.op === "FROM");
    assert.match(froms[0].args, /^\$\{BASE_IMAGE\} AS node$/);
    assert.ok(froms.length >= 3, "build, deps and runtime stages");
  });

  it("installs the CUDA 12 provider explicitly and fails without it", () => {
    assert.match(dockerfile, /ONNXRUNTIME_NODE_INSTALL=cuda12/);
    assert.match(dockerfile, /npm ci --omit=dev/);
    assert.match(dockerfile, /node node_modules\/onnxruntime-node\/script\/install/);
    assert.match(dockerfile, /test -s node_modules\/onnxruntime-node\/bin\/napi-v6\/linux\/x64\/libonnxruntime_providers_cuda\.so[\s\\]*\|\|.*exit 1/);
  });

  it("runs as a non-root user with an exec-form ENTRYPOINT that takes `serve`", () => {
    const last = (op: string) => [...instructions].reverse().find((i) => i.op === op)!;
    assert.deepEqual(JSON.parse(last("ENTRYPOINT").args), ["node", "dist/main.js"]);
    assert.deepEqual(JSON.parse(last("CMD").args), ["serve"]);
    assert.match(last("USER").args, /^[1-9]\d*$/);
  });

  it("keeps the production defaults; the local CPU variant is build arguments only", () => {
    const defaults = Object.fromEntries(instructions.filter((i) => i.op === "ARG").map((i) => i.args.split("=")).map(([k, ...v]) => [k, v.join("=")]));
    assert.equal(defaults.NODE_SOURCE, "dist");
    assert.equal(defaults.ONNXRUNTIME_NODE_INSTALL, "cuda12");
    assert.equal(defaults.BUILD_CA_CERTS, "");
    assert.match(defaults.NODE_VERSION, /^\d+\.\d+\.\d+$/);
    // One Node pin: the production image's default is the project's (.nvmrc, which image:local passes).
    const pin = projectNodeVersion();
    if (pin !== undefined) assert.equal(defaults.NODE_VERSION, pin, "runtime/Dockerfile NODE_VERSION differs from .nvmrc");
    // The final stage starts again from the base: nothing of the Node download stage (its CA, npm, curl) but the binary.
    const finalFrom = instructions.map((i) => i.op).lastIndexOf("FROM");
    assert.equal(instructions[finalFrom].args, "${BASE_IMAGE} AS runtime");
    const finalStage = instructions.slice(finalFrom);
    assert.ok(!finalStage.some((i) => /BUILD_CA_CERTS|NODE_EXTRA_CA_CERTS|npm /.test(i.args)), "the final stage never sees the build CA or npm");
    assert.deepEqual(finalStage.filter((i) => i.op === "COPY" && i.args.startsWith("--from")).map((i) => i.args.split(/\s+/)[0]), ["--from=node", "--from=deps", "--from=build"]);
    // Classic builder and offline BuildKit: no frontend image to pull, no BuildKit-only syntax.
    assert.doesNotMatch(dockerfile, /^#\s*syntax=/m);
    assert.doesNotMatch(dockerfile, /--mount=/);
  });

  it("sets the runtime process's C library and V8 settings (RUNTIME_PROCESS_ENV) in the final stage", () => {
    const finalStage = instructions.slice(instructions.map((i) => i.op).lastIndexOf("FROM"));
    const env = finalStage.filter((i) => i.op === "ENV").flatMap((i) => i.args.split(/\s+/)).map((pair) => pair.split("="));
    for (const [name, value] of Object.entries(RUNTIME_PROCESS_ENV)) {
      assert.deepEqual(env.filter(([k]) => k === name).map(([, ...v]) => v.join("=")), [value], `ENV ${name} in the final stage`);
    }
  });

  it("copies only files that exist in the build context and are not ignored", async () => {
    const ignored = (await readFile(join(REPO_ROOT, "runtime", ".dockerignore"), "utf8")).split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    const sources = instructions.filter((i) => i.op === "COPY" && !i.args.startsWith("--from")).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    assert.ok(sources.length > 0);
    for (const source of sources) {
      await readFile(join(REPO_ROOT, "runtime", source)).catch(async () => readdir(join(REPO_ROOT, "runtime", source)));
      assert.ok(!ignored.includes(source), `${source} is excluded by .dockerignore`);
    }
    assert.ok(ignored.includes("node_modules") && ignored.includes("dist"));
  });
});
