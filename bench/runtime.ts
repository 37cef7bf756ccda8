// Runtime benchmark: full 721×1440 grid, stand-in models whose session.run costs about as much as
// one step's encode + upload, local S3, the runtime as a child process, compiled first and started as
// the image starts it (`node dist/main.js serve`, with the image's RUNTIME_PROCESS_ENV).
// Prints Σ session.run, the step-loop wall time and their ratio, per-step encode/upload ms, file size,
// compression ratio and RSS.
//   npm run bench:runtime -- [--compression none|gzip|bitround] [--steps 20] [--ops 12] [--threads 1]
//                            [--in-flight 2] [--encode-threads N (runtime default)]
import { execFileSync } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { startLocalS3 } from "../tools/local-s3";
import { writeStandinModels } from "../tools/standin-model";
import { RUNTIME_LOG_EVENTS, runtimeLogEvent, type Manifest } from "../runtime/src/contract";
import { COMPILED_ENTRY, REPO_ROOT, forecastRequest, http, startRuntimeChild, tempDir, writeInputWithXarray } from "../test/support/runtime-harness";

const GRID = { lat: 721, lon: 1440 };

function post(url: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method: "POST", headers: { "content-type": "application/json" } }, (response) => {
      const parts: Buffer[] = [];
      response.on("data", (part: Buffer) => parts.push(part));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(parts).toString("utf8") }));
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(body);
  });
}

async function rssOf(pid: number): Promise<{ rssMb: number; peakMb: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rssMb: (kb("VmRSS") * 1024) / 1e6, peakMb: (kb("VmHWM") * 1024) / 1e6 };
}

function stats(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const digits = mean < 10 ? 1 : 0;
  return `mean ${mean.toFixed(digits)}  median ${sorted[Math.floor(sorted.length / 2)].toFixed(digits)}  max ${sorted[sorted.length - 1].toFixed(digits)}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { steps: { type: "string", default: "20" }, ops: { type: "string", default: "12" }, threads: { type: "string", default: "1" }, "in-flight": { type: "string", default: "2" }, compression: { type: "string", default: "none" }, "encode-threads": { type: "string" } } });
  const compression = values.compression!;
  if (!["none", "gzip", "bitround"].includes(compression)) throw new Error("--compression must be none, gzip or bitround");
  const steps = Number(values.steps);
  const ops = Number(values.ops);
  if (!Number.isInteger(steps) || steps < 10 || steps > 100) throw new Error("--steps must be 10 … 100");
  const work = await tempDir("bench-runtime");
  const s3 = await startLocalS3({ buckets: ["fuxi-data"], directory: join(work, "s3") });
  try {
    console.log(`grid ${GRID.lat}x${GRID.lon}, ${steps} steps, compression ${compression}, stand-in busy ops ${ops}, FUXI_INTRA_OP_THREADS ${values.threads}, FUXI_STEPS_IN_FLIGHT ${values["in-flight"]}, FUXI_ENCODE_THREADS ${values["encode-threads"] ?? "(default)"}; input and fields SYNTHETIC`);
    await writeStandinModels(join(work, "models"), { ...GRID, opsPerStep: ops });
    // Compiled, as the image runs it: from source every thread would also load tsx (~20 MB of RSS).
    execFileSync(process.execPath, [join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", join(REPO_ROOT, "runtime", "tsconfig.json")], { stdio: "inherit" });
    let started = performance.now();
    const input = await writeInputWithXarray(join(work, "input.nc"), { ...GRID, initTime: new Date("2023-10-12T06:00:00Z") });
    await s3.client.send(new PutObjectCommand({ Bucket: "fuxi-data", Key: "input/bench/fuxi_input.nc", Body: input }));
    console.log(`input ${(input.length / 1e6).toFixed(1)} MB written by xarray and uploaded in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    const runtime = await startRuntimeChild({ ...s3.env, FUXI_MODEL_DIR: join(work, "models"), FUXI_INTRA_OP_THREADS: values.threads!, FUXI_STEPS_IN_FLIGHT: values["in-flight"]!, ...(values["encode-threads"] ? { FUXI_ENCODE_THREADS: values["encode-threads"] } : {}), LOG_LEVEL: "info" }, ["serve"], COMPILED_ENTRY);
    const stopOnError = (error: unknown) => runtime.stop().then(() => Promise.reject(error));
    await runtime.waitUntilReady(120_000).catch(stopOnError);
    const pid = runtime.child.pid!;
    const readyMb = (await rssOf(pid)).rssMb;
    const samples: Array<{ at: number; rssMb: number }> = [];
    const sampler = setInterval(() => {
      rssOf(pid).then((r) => samples.push({ at: Date.now(), rssMb: r.rssMb }), () => undefined);
    }, 100);
    started = performance.now();
    const pings: number[] = [];
    let done = false;
    const pinger = (async () => {
      while (!done) {
        pings.push((await http("GET", `${runtime.url}/ping`)).ms);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();
    // node:http without a response timeout: on a loaded machine a run can take longer than fetch's 300 s.
    const response = await post(`${runtime.url}/invocations`, JSON.stringify(forecastRequest("bench", steps <= 20 ? [steps] : [20, steps - 20], { compression }))).catch(stopOnError);
    done = true;
    await pinger;
    clearInterval(sampler);
    if (response.status !== 200) throw new Error(`invocation failed: ${response.status} ${response.body}`);
    const manifest: Manifest = JSON.parse(response.body);
    const { peakMb } = await rssOf(pid);
    await runtime.stop();

    const computed = manifest.files.filter((f) => !f.resumed);
    const sumRun = computed.reduce((a, f) => a + (f.runMs ?? 0), 0);
    const stepLogs = runtime.logs.map((l) => runtimeLogEvent(l, RUNTIME_LOG_EVENTS.stepDone)).filter((l) => l !== undefined);
    // Flat in step count: the highest RSS sampled while the first half of the steps ran vs. while the
    // second half ran (a step's step.done event is logged when its upload has finished).
    const half = Math.floor(steps / 2);
    const doneAt = (step: number) => Date.parse(stepLogs.find((l) => l.step === step)!.time!);
    const loopStart = Date.parse(manifest.finishedAt) - manifest.stepLoopMs;
    const peakBetween = (from: number, to: number) => Math.max(...samples.filter((x) => x.at >= from && x.at <= to).map((x) => x.rssMb));
    const peakSampled = Math.max(...samples.map((x) => x.rssMb));
    console.log(`invocation wall ${(manifest.wallMs / 1000).toFixed(1)} s (input download + decode + steps + manifest)`);
    console.log(`Σ session.run ${(sumRun / 1000).toFixed(2)} s   step-loop wall ${(manifest.stepLoopMs / 1000).toFixed(2)} s   ratio ${(manifest.stepLoopMs / sumRun).toFixed(3)} (target ≤ 1.15)`);
    console.log(`session.run ms/step: ${stats(computed.map((f) => f.runMs!))}`);
    console.log(`encode ms/step:      ${stats(computed.map((f) => f.encodeMs!))}`);
    console.log(`upload ms/step:      ${stats(computed.map((f) => f.uploadMs!))}`);
    const raw = 70 * GRID.lat * GRID.lon * 4;
    const meanBytes = computed.reduce((a, f) => a + f.bytes, 0) / computed.length;
    console.log(`step file MB:        ${stats(computed.map((f) => f.bytes / 1e6))} (mean ${(meanBytes / 1e6).toFixed(1)} MB; compression ratio ${(raw / meanBytes).toFixed(2)} against ${(raw / 1e6).toFixed(1)} MB of float32; synthetic fields)`);
    console.log(`per-step encode ms:  ${computed.map((f) => f.encodeMs!.toFixed(0)).join(" ")}`);
    console.log(`peak RSS ${peakMb.toFixed(0)} MB (VmHWM; sampled every 100 ms: ${peakSampled.toFixed(0)} MB) (target ≤ 2000 MB)`);
    const loopSamples = samples.filter((x) => x.at >= doneAt(0) && x.at <= doneAt(steps - 2)).map((x) => x.rssMb);
    console.log(`RSS when ready (first stage loaded, before the request) ${readyMb.toFixed(0)} MB; lowest sampled between the first and the next-to-last step.done ${Math.min(...loopSamples).toFixed(0)} MB`);
    const first = peakBetween(loopStart, doneAt(half - 1));
    const second = peakBetween(doneAt(half - 1), doneAt(steps - 1));
    console.log(`highest RSS sampled during steps 1-${half}: ${first.toFixed(0)} MB, during steps ${half + 1}-${steps}: ${second.toFixed(0)} MB (${(((second - first) / first) * 100).toFixed(1)} %, target within 5 %)`);
    console.log(`/ping during the run: ${pings.length} pings, ${stats(pings)} ms`);
  } finally {
    await s3.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
