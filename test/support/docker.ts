// Shared by the tests that need the real Docker engine: one build of the local image per mocha run,
// and the one line that says why they are skipped on a machine without Docker.
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { buildLocalImage, requireDocker, type BuiltImage } from "../../tools/runtime-image";

/** Set by .ci/run once it has a Docker engine: then a missing engine fails the tests instead of skipping them. */
export const DOCKER_REQUIRED = process.env.FUXI_REQUIRE_DOCKER === "1";

let announced = false;

/** Skips the calling suite (one clear line, printed once per run) when there is no Docker engine, unless CI requires one. */
export function skipWithoutDocker(context: Mocha.Context, extra: { command: string; install: string }[] = []): void {
  let reason: string | undefined;
  try {
    requireDocker();
  } catch (error) {
    reason = (error as Error).message;
  }
  for (const tool of extra) {
    if (!reason && spawnSync("sh", ["-c", `command -v ${tool.command}`], { stdio: "ignore" }).status !== 0) reason = `no \`${tool.command}\`: ${tool.install}`;
  }
  if (!reason) return;
  if (DOCKER_REQUIRED) throw new Error(`FUXI_REQUIRE_DOCKER=1 but ${reason}`);
  if (!announced || extra.length > 0) console.log(`      SKIPPED (container image tests): ${reason}`);
  announced = true;
  context.skip();
}

let built: Promise<BuiltImage> | undefined;

/** The local CPU image, built once per test run (cached layers make it quick after the first time). */
export function localImage(): Promise<BuiltImage> {
  const log = join(tmpdir(), `fuxi-image-build-${process.pid}.log`);
  // The log is kept only when the build fails (the error names it).
  built ??= buildLocalImage({ log, progress: () => undefined }).then((image) => (rmSync(log, { force: true }), image));
  return built;
}

export function docker(args: string[], options: { input?: string } = {}): string {
  const result = spawnSync("docker", args, { encoding: "utf8", input: options.input, maxBuffer: 256 << 20 });
  if (result.status !== 0) throw new Error(`docker ${args.join(" ")} failed (${result.status}): ${result.stderr.trim()}`);
  return result.stdout;
}
