// Start-up benchmark: the six model files in prefix mode on loopback S3, with stand-in weights padded
// to a realistic size (generated here, zeros, deleted afterwards), then the runtime started with an
// empty FUXI_MODEL_DIR as a Batch Transform container starts. Prints the raw parallel GET reference
// and the runtime's model fetch in the same run, time to /ping healthy, time to the first step, and
// the session creations of a [20,20,20] run (on a small grid: the run is not what is measured here).
// Then prefix mode again with fuxi-models.json next to the files, where the later stages' weights
// download while the first stage serves: time to healthy, and when they arrived. Then the `.tar.gz` artifact mode in the same run: what SageMaker does before the container starts
// (one GET of the archive, gunzip and untar into the model folder: one stream, one core), then the
// runtime started on that folder, to /ping healthy.
//   npm run bench:startup -- [--weights-mb 1024] [--prefetch]   (per stage; three stages; --prefetch sets FUXI_PREFETCH_NEXT_STAGE)
import { randomFillSync } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import * as tar from "tar";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { startLocalS3 } from "../tools/local-s3";
import { STAGES, writeStandinModels } from "../tools/standin-model";
import { MODEL_FILES, RUNTIME_LOG_EVENTS, runtimeLogEvent } from "../runtime/src/contract";
import { describeModelFiles, MODELS_MANIFEST, renderModelsManifest } from "../runtime/src/model-store";
import { forecastRequest, startRuntimeChild, tempDir, writeInputWithXarray } from "../test/support/runtime-harness";

const GRID = { lat: 9, lon: 16 };
const BUCKET = "fuxi-data";
const INIT = new Date("2023-10-12T06:00:00Z");

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { "weights-mb": { type: "string", default: "1024" }, prefetch: { type: "boolean", default: false } } });
  const weightsBytes = Number(values["weights-mb"]) * 1024 * 1024;
  if (!(weightsBytes >= 1024 * 1024)) throw new Error("--weights-mb must be at least 1");
  const work = await tempDir("bench-startup");
  const s3 = await startLocalS3({ buckets: [BUCKET], directory: join(work, "s3") });
  try {
    const models = join(work, "models");
    await writeStandinModels(models, GRID);
    // ORT reads only the byte ranges the graph references, so bytes appended to the weights file make
    // it full-size without changing the model. Random bytes, because float weights barely compress
    // (zeros would flatter the .tar.gz mode).
    const block = Buffer.alloc(16 * 1024 * 1024);
    for (const stage of STAGES) {
      const file = await open(join(models, stage), "r+");
      for (let at = (await file.stat()).size; at < weightsBytes; at += block.length) {
        randomFillSync(block);
        await file.write(block, 0, Math.min(block.length, weightsBytes - at), at);
      }
      await file.close();
    }
    let total = 0;
    let started = performance.now();
    for (const name of MODEL_FILES) {
      const size = (await stat(join(models, name))).size;
      total += size;
      await new Upload({ client: s3.client, params: { Bucket: BUCKET, Key: `models/${name}`, Body: createReadStream(join(models, name)) }, partSize: 64 * 1024 * 1024, queueSize: 4 }).done();
    }
    console.log(`six model files, ${(total / 1e9).toFixed(2)} GB (stand-in graph, weights padded with random bytes), uploaded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const modelsManifest = renderModelsManifest(await describeModelFiles(models)); // uploaded later, for the second prefix-mode start
    const archive = join(work, "models.tar.gz");
    await tar.c({ gzip: true, file: archive, cwd: models }, [...MODEL_FILES]);
    const archiveBytes = (await stat(archive)).size;
    await new Upload({ client: s3.client, params: { Bucket: BUCKET, Key: "models.tar.gz", Body: createReadStream(archive) }, partSize: 64 * 1024 * 1024, queueSize: 4 }).done();
    await rm(archive);
    await rm(models, { recursive: true, force: true });
    const input = await writeInputWithXarray(join(work, "input.nc"), { ...GRID, initTime: INIT });
    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "input/startup/fuxi_input.nc", Body: input }));
    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "input/startup-listed/fuxi_input.nc", Body: input }));

    // Reference: a plain parallel GET of the same six objects, bodies counted and discarded.
    started = performance.now();
    await Promise.all(
      MODEL_FILES.map(async (name) => {
        const response = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `models/${name}` }));
        for await (const _chunk of response.Body as AsyncIterable<Uint8Array>) void _chunk;
      }),
    );
    const rawSeconds = (performance.now() - started) / 1000;

    const cache = join(work, "cache");
    const spawned = performance.now();
    const runtime = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: join(work, "empty"), FUXI_MODEL_S3_URI: `s3://${BUCKET}/models/`, FUXI_MODEL_CACHE_DIR: cache, LOG_LEVEL: "info", ...(values.prefetch ? { FUXI_PREFETCH_NEXT_STAGE: "true" } : {}) });
    try {
      await runtime.waitUntilReady(1_800_000);
      const healthyS = (performance.now() - spawned) / 1000;
      const at = (line: Record<string, unknown> | undefined) => Date.parse(String(line?.time));
      const fetchFrom = at(runtime.logs.find((l) => String(l.msg).includes("downloading")));
      const fetchTo = Math.max(...runtime.logs.filter((l) => l.msg === "model file downloaded").map(at));
      const fetchSeconds = (fetchTo - fetchFrom) / 1000;
      const posted = Date.now();
      const response = fetch(`${runtime.url}/invocations`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(forecastRequest("startup", [20, 20, 20])) });
      const firstStep = await runtime.waitForLog((l) => runtimeLogEvent(l, RUNTIME_LOG_EVENTS.stepDone)?.step === 0, 600_000);
      const result = await response;
      if (result.status !== 200) throw new Error(`invocation failed: ${result.status} ${await result.text()}`);
      const steps = runtime.logs.flatMap((l) => runtimeLogEvent(l, RUNTIME_LOG_EVENTS.stepDone) ?? []);
      console.log(`raw parallel GET of the six objects: ${rawSeconds.toFixed(1)} s, ${(total / 1e6 / rawSeconds).toFixed(0)} MB/s`);
      console.log(`runtime model fetch (ranged GETs, 64 MiB × 8 per file): ${fetchSeconds.toFixed(1)} s, ${(total / 1e6 / fetchSeconds).toFixed(0)} MB/s = ${(rawSeconds / fetchSeconds).toFixed(2)} × raw (target ≥ 0.8)`);
      console.log(`time to /ping healthy (spawn → 200, incl. fetch, SHA-256 of ${(total / 1e9).toFixed(2)} GB, first stage loaded): ${healthyS.toFixed(1)} s`);
      console.log(`time to the first step (POST → step 0 uploaded): ${((at(firstStep) - posted) / 1000).toFixed(1)} s`);
      console.log(`session creations in the [20,20,20] run: ${steps.find((s) => s.step === 59)?.sessionCreations} (at steps 0, 20, 40: ${[0, 20, 40].map((k) => steps.find((s) => s.step === k)?.sessionCreations).join(", ")})`);
      console.log(`session creation inside the run (loadMs of steps 20 and 40, the medium and long stages; the step waits for it${values.prefetch ? "; FUXI_PREFETCH_NEXT_STAGE: only for a session not yet ready, plus the handover" : ""}): ${[20, 40].map((k) => steps.find((s) => s.step === k)?.loadMs).join(", ")} ms`);
      console.log(`prefix mode, spawn → /ping healthy: ${healthyS.toFixed(1)} s`);
    } finally {
      await runtime.stop();
    }
    await rm(cache, { recursive: true, force: true });

    // Prefix mode with fuxi-models.json (what `npm run models -- upload` writes, and what preview requires
    // for a prefix): the medium and long weights download while the first stage serves.
    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `models/${MODELS_MANIFEST}`, Body: modelsManifest }));
    const listedSpawned = performance.now();
    const listed = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: join(work, "empty"), FUXI_MODEL_S3_URI: `s3://${BUCKET}/models/`, FUXI_MODEL_CACHE_DIR: cache, LOG_LEVEL: "info", ...(values.prefetch ? { FUXI_PREFETCH_NEXT_STAGE: "true" } : {}) });
    try {
      await listed.waitUntilReady(1_800_000);
      const healthyS = (performance.now() - listedSpawned) / 1000;
      const readyAt = Date.parse(String(listed.logs.find((l) => runtimeLogEvent(l, RUNTIME_LOG_EVENTS.ready))?.time));
      const posted = Date.now();
      const result = await fetch(`${listed.url}/invocations`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(forecastRequest("startup-listed", [20, 20, 20])) });
      if (result.status !== 200) throw new Error(`invocation failed: ${result.status} ${await result.text()}`);
      const steps = listed.logs.flatMap((l) => runtimeLogEvent(l, RUNTIME_LOG_EVENTS.stepDone) ?? []);
      const arrived = (file: string) => (Date.parse(String(listed.logs.find((l) => l.msg === "model file downloaded" && l.file === file)?.time)) - readyAt) / 1000;
      console.log(`prefix mode with ${MODELS_MANIFEST}: spawn → /ping healthy ${healthyS.toFixed(1)} s (graphs and short in, checked, short loaded); medium and long arrived ${arrived("medium").toFixed(1)} s and ${arrived("long").toFixed(1)} s after that`);
      console.log(`  POST → step 0 uploaded ${((Date.parse(String(steps.find((s) => s.step === 0)?.time)) - posted) / 1000).toFixed(1)} s; loadMs of steps 20 and 40 (includes any wait for those weights): ${[20, 40].map((k) => steps.find((s) => s.step === k)?.loadMs).join(", ")} ms; session creations ${steps.find((s) => s.step === 59)?.sessionCreations}; POST → done ${((Date.now() - posted) / 1000).toFixed(1)} s`);
    } finally {
      await listed.stop();
    }
    await rm(cache, { recursive: true, force: true });

    // .tar.gz mode: SageMaker's download and extraction before the container starts, then the runtime.
    const extracted = join(work, "extracted");
    await mkdir(extracted);
    started = performance.now();
    const object = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "models.tar.gz" }));
    await pipeline(object.Body as Readable, tar.x({ cwd: extracted }));
    const extractS = (performance.now() - started) / 1000;
    const spawnedFromArchive = performance.now();
    const fromArchive = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: extracted, LOG_LEVEL: "info" });
    try {
      await fromArchive.waitUntilReady(1_800_000);
      const healthyS = (performance.now() - spawnedFromArchive) / 1000;
      console.log(`.tar.gz mode (${(archiveBytes / 1e9).toFixed(2)} GB archive): GET + gunzip + untar ${extractS.toFixed(1)} s, then spawn → /ping healthy ${healthyS.toFixed(1)} s: ${(extractS + healthyS).toFixed(1)} s in all`);
    } finally {
      await fromArchive.stop();
    }
  } finally {
    await s3.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
