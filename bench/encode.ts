// Encoder benchmark: one full-grid step (721×1440, 290.7 MB float32) written as a gzip (or bitround)
// NetCDF file by the runtime's encoder (`writeForecastStepFile` with an EncodePool of N worker
// threads), N from --threads, several runs each, all in one process so the figures compare. The
// fields are SYNTHETIC: the benchmark input after one stand-in step (noise in the low mantissa bits).
//   npm run bench:encode -- [--threads 1,2] [--runs 3] [--compression gzip|bitround]
import { rm, stat } from "node:fs/promises";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { standinReferenceStep } from "../tools/standin-model";
import { EncodePool } from "../runtime/src/encode-pool";
import { writeForecastStepFile, type ForecastStep } from "../runtime/src/netcdf/forecast-step";
import { CHANNEL_NAMES } from "../runtime/src/contract";
import { bitsPerChannel, DEFAULT_BITROUND_BITS } from "../runtime/src/bitround-bits";
import { syntheticWindow, tempDir } from "../test/support/runtime-harness";

const GRID = { lat: 721, lon: 1440 };

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { threads: { type: "string", default: "1,2" }, runs: { type: "string", default: "3" }, compression: { type: "string", default: "gzip" } } });
  const threads = values.threads!.split(",").map(Number);
  const runs = Number(values.runs);
  const compression = values.compression as "gzip" | "bitround";
  if (!["gzip", "bitround"].includes(compression)) throw new Error("--compression must be gzip or bitround");
  if (!threads.every((n) => Number.isInteger(n) && n >= 1) || !(runs >= 1)) throw new Error("--threads is a list of positive integers, --runs a positive integer");
  const frame = 70 * GRID.lat * GRID.lon;
  const window = standinReferenceStep("short", syntheticWindow(GRID.lat, GRID.lon), new Float32Array(12).fill(0.5), GRID);
  const data = window.slice(frame);
  const step: ForecastStep = {
    initTime: new Date("2023-10-12T06:00:00Z"),
    leadHours: 6,
    levels: [...CHANNEL_NAMES],
    lat: Float64Array.from({ length: GRID.lat }, (_, i) => 90 - i * 0.25),
    lon: Float64Array.from({ length: GRID.lon }, (_, i) => i * 0.25),
    data,
    compression,
    ...(compression === "bitround" ? { bitroundBits: bitsPerChannel(DEFAULT_BITROUND_BITS) } : {}),
  };
  const work = await tempDir("bench-encode");
  console.log(`one ${GRID.lat}x${GRID.lon} step (${((frame * 4) / 1e6).toFixed(1)} MB float32, SYNTHETIC), ${compression}, ${availableParallelism()} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  try {
    for (const n of threads) {
      const pool = new EncodePool(n);
      try {
        const times: number[] = [];
        let bytes = 0;
        for (let run = 0; run < runs; run++) {
          const path = join(work, `step-${n}-${run}.nc`);
          const started = performance.now();
          await writeForecastStepFile(step, path, pool.encodeFields);
          times.push(performance.now() - started);
          bytes = (await stat(path)).size;
          await rm(path);
        }
        const best = Math.min(...times);
        console.log(`FUXI_ENCODE_THREADS=${n}: ${times.map((t) => t.toFixed(0)).join(" / ")} ms (first includes the threads' start), best ${best.toFixed(0)} ms = ${((best * n) / 1000).toFixed(2)} thread-s, file ${(bytes / 1e6).toFixed(1)} MB`);
      } finally {
        await pool.close();
      }
    }
    console.log(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
