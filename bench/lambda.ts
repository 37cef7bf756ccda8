// `npm run bench:lambda`: size of the trigger Lambda bundle and its cold `require` time in fresh node
// processes (what a Lambda cold start pays for our code on top of the runtime's own start). Wall time
// swings with other load on a shared 2-core machine, so CPU time of the same require is printed too; the
// exit code is 1 when the size or the CPU-time median is over target.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { bundleTriggerHandler } from "../trigger/bundle";

const TARGET_BYTES = 1_000_000;
const TARGET_REQUIRE_MS = 200;
const RUNS = 9;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main(): Promise<void> {
  const buildStart = performance.now();
  const { code, sizeBytes } = await bundleTriggerHandler();
  const buildMs = performance.now() - buildStart;

  const dir = mkdtempSync(join(tmpdir(), "fuxi-bench-lambda-"));
  try {
    const file = join(dir, "index.js");
    writeFileSync(file, code);
    const probe = `const c = process.cpuUsage(); const t = process.hrtime.bigint(); const m = require(${JSON.stringify(file)});
      const wall = Number(process.hrtime.bigint() - t) / 1e6; const u = process.cpuUsage(c);
      if (typeof m.handler !== "function") throw new Error("bundle exports no handler");
      process.stdout.write(JSON.stringify({ wall, cpu: (u.user + u.system) / 1000 }));`;
    const samples: Array<{ wall: number; cpu: number }> = [];
    for (let i = 0; i < RUNS; i += 1) {
      samples.push(JSON.parse(execFileSync(process.execPath, ["-e", probe], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })));
    }
    const wallMs = median(samples.map((s) => s.wall));
    const cpuMs = median(samples.map((s) => s.cpu));
    const rows = [
      ["bundle size", `${(sizeBytes / 1e6).toFixed(3)} MB (${sizeBytes} bytes)`, `target ≤ ${TARGET_BYTES / 1e6} MB`, sizeBytes / TARGET_BYTES],
      [`cold require wall, median/${RUNS}`, `${wallMs.toFixed(1)} ms`, `target ≤ ${TARGET_REQUIRE_MS} ms`, wallMs / TARGET_REQUIRE_MS],
      [`cold require CPU, median/${RUNS}`, `${cpuMs.toFixed(1)} ms`, `target ≤ ${TARGET_REQUIRE_MS} ms`, cpuMs / TARGET_REQUIRE_MS],
    ] as const;
    console.log(`trigger Lambda bundle (node ${process.version}, esbuild ${buildMs.toFixed(0)} ms, load average ${loadavg()[0].toFixed(1)})`);
    for (const [what, value, target, ratio] of rows) {
      console.log(`  ${what.padEnd(30)} ${value.padEnd(28)} ${target.padEnd(18)} ratio ${ratio.toFixed(2)}${ratio > 1 ? "  OVER" : ""}`);
    }
    console.log(`  wall (ms): ${samples.map((s) => s.wall.toFixed(0)).join(", ")}`);
    console.log(`  CPU  (ms): ${samples.map((s) => s.cpu.toFixed(0)).join(", ")}`);
    if (sizeBytes > TARGET_BYTES || cpuMs > TARGET_REQUIRE_MS) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
