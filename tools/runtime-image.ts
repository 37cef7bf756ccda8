/**
 * `npm run image:local [-- --base IMAGE] [--tag NAME] [--buildkit]`: builds the runtime image's local
 * CPU variant from the one runtime/Dockerfile, on a Debian base made here with debootstrap, and prints
 * the image ID on its last line. Installs nothing: a missing Docker engine or debootstrap is reported
 * with the command that installs it. The tests and `npm start -- --container` build through
 * `buildLocalImage` too, so all of them run the same image.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, createWriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

export const REPO_ROOT = resolve(__dirname, "..");
export const RUNTIME_CONTEXT = join(REPO_ROOT, "runtime");
/** The Debian base the local variant builds on (made by `ensureLocalBase` when missing). */
export const LOCAL_BASE_IMAGE = "fuxi-local/debian:bookworm";
export const LOCAL_IMAGE_TAG = "fuxi-runtime:local";
/** Where a machine adds its own certificate authorities (Debian's update-ca-certificates reads them). */
const LOCAL_CA_DIR = "/usr/local/share/ca-certificates";
/** A build argument is one execve argument: Linux caps one at 128 KiB. */
const MAX_CA_BYTES = 100_000;

/** The project's Node pin (.nvmrc), which the image's NODE_VERSION follows; undefined without one. */
export function projectNodeVersion(): string | undefined {
  const file = join(REPO_ROOT, ".nvmrc");
  return existsSync(file) ? readFileSync(file, "utf8").trim().replace(/^v/, "") : undefined;
}

/** The build arguments that make the local CPU variant; everything else keeps the production default. */
export function localBuildArgs(baseImage: string, caCerts: string): Record<string, string> {
  const nodeVersion = projectNodeVersion();
  return {
    BASE_IMAGE: baseImage,
    ...(nodeVersion ? { NODE_VERSION: nodeVersion } : {}),
    NODE_SOURCE: "npm",
    ONNXRUNTIME_NODE_INSTALL: "skip",
    ...(caCerts ? { BUILD_CA_CERTS: caCerts } : {}),
  };
}

export class DockerUnavailableError extends Error {}

/** Throws DockerUnavailableError saying how to get a Docker engine when there is none to talk to. */
export function requireDocker(): void {
  const probe = spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], { encoding: "utf8" });
  if (probe.error && (probe.error as NodeJS.ErrnoException).code === "ENOENT") {
    throw new DockerUnavailableError(
      "no `docker` command: install Debian's Docker engine (`sudo apt-get install docker.io`) and start it " +
        "(`sudo systemctl start docker`, or `sudo dockerd --iptables=false --bridge=none &` where there is no systemd)",
    );
  }
  if (probe.status !== 0) {
    throw new DockerUnavailableError(
      `the Docker daemon does not answer (\`docker info\`: ${(probe.stderr || probe.stdout).trim().split("\n").pop()}): ` +
        "start it (`sudo systemctl start docker`, or `sudo dockerd --iptables=false --bridge=none &`) and make sure this user may use it",
    );
  }
}

/**
 * The `docker` CLI that can build with BuildKit: Docker's own CLI from 23 on builds with BuildKit only
 * through the buildx plugin, while older CLIs (Debian bookworm's docker.io, 20.10) have it built in
 * (DOCKER_BUILDKIT=1). Machines often carry both (Docker's CLI in /usr/local/bin before Debian's), so
 * every `docker` on PATH is tried in order. Throws DockerUnavailableError naming each one and why not.
 */
export function buildkitDockerCli(): string {
  const found = spawnSync("sh", ["-c", "which -a docker"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
  const reasons: string[] = [];
  for (const cli of [...new Set(found)]) {
    if (spawnSync(cli, ["buildx", "version"], { stdio: "ignore" }).status === 0) return cli;
    const version = spawnSync(cli, ["version", "--format", "{{.Client.Version}}"], { encoding: "utf8" }).stdout.trim();
    const major = Number(/^(\d+)\./.exec(version)?.[1]);
    if (major > 0 && major < 23) return cli;
    reasons.push(`${cli} (client ${version || "unknown"}, no buildx plugin)`);
  }
  throw new DockerUnavailableError(
    `no docker CLI here builds with BuildKit: ${reasons.join("; ") || "none on PATH"}. Install the buildx plugin ` +
      "(https://docs.docker.com/build/install-buildx/) or Debian's docker.io (`sudo apt-get install docker.io`, BuildKit built in)",
  );
}

export function imageExists(reference: string): boolean {
  return spawnSync("docker", ["image", "inspect", reference], { stdio: "ignore" }).status === 0;
}

/** Runs a command with its output appended to `log` (or inherited to stderr); throws naming the command and the log. */
function runLogged(command: string, args: string[], log: string | undefined, options: { env?: NodeJS.ProcessEnv; stdin?: "pipe" } = {}): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const out = log ? createWriteStream(log, { flags: "a" }) : undefined;
    const child = spawn(command, args, { env: options.env ?? process.env, stdio: ["ignore", out ? "pipe" : process.stderr, out ? "pipe" : process.stderr] });
    if (out) {
      out.write(`\n$ ${command} ${args.map((a) => (a.length > 200 ? `${a.slice(0, 40)}…` : a)).join(" ")}\n`);
      child.stdout!.pipe(out, { end: false });
      child.stderr!.pipe(out, { end: false });
    }
    child.once("error", reject);
    child.once("close", (code, signal) => {
      const done = () => (code === 0 ? resolvePromise() : reject(new Error(`${command} ${args[0]} failed (${signal ?? `exit code ${code}`})${log ? `; output in ${log}, ending:\n${logTail(log)}` : ""}`)));
      if (out) out.end(done);
      else done();
    });
  });
}

/** The last lines of a build log, for an error that must say why without the log at hand (CI). */
function logTail(log: string, lines = 15): string {
  const text = existsSync(log) ? readFileSync(log, "utf8") : "";
  return text.trimEnd().split("\n").slice(-lines).map((line) => `  ${line}`).join("\n");
}

export interface Progress {
  (line: string): void;
}

/**
 * Makes the local Debian base when it is missing: `debootstrap --variant=minbase bookworm` from the
 * Debian archive, then `docker import` (no image registry needs to be reachable).
 */
export async function ensureLocalBase(reference: string, options: { log?: string; progress: Progress; mirror?: string }): Promise<"present" | "made"> {
  if (imageExists(reference)) return "present";
  if (spawnSync("sh", ["-c", "command -v debootstrap"], { stdio: "ignore" }).status !== 0) {
    throw new DockerUnavailableError(`the base image ${reference} does not exist and making it needs debootstrap: \`sudo apt-get install debootstrap\` (or pass --base with an existing Debian/Ubuntu image)`);
  }
  if (process.getuid?.() !== 0) {
    throw new Error(`the base image ${reference} does not exist; debootstrap must run as root to make it: run this once with sudo (or pass --base with an existing Debian/Ubuntu image)`);
  }
  const mirror = options.mirror ?? process.env.DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
  const work = mkdtempSync(join(tmpdir(), "fuxi-base-"));
  const rootfs = join(work, "rootfs");
  try {
    options.progress(`making the base image ${reference}: debootstrap --variant=minbase bookworm from ${mirror} (a few minutes, once)`);
    await runLogged("debootstrap", ["--variant=minbase", "bookworm", rootfs, mirror], options.log);
    // The archive's package lists are not needed in the base (the build fetches fresh ones).
    rmSync(join(rootfs, "var/cache/apt/archives"), { recursive: true, force: true });
    mkdirSync(join(rootfs, "var/cache/apt/archives/partial"), { recursive: true });
    await runLogged("sh", ["-c", `tar -C '${rootfs}' -c . | docker import - '${reference}'`], options.log);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return "made";
}

/** Certificates the build's HTTPS must trust: the machine's own CAs (none on most machines). */
export function localCaCertificates(caFile?: string): string {
  const files = caFile ? [caFile] : existsSync(LOCAL_CA_DIR) ? readdirSync(LOCAL_CA_DIR).filter((f) => f.endsWith(".crt")).map((f) => join(LOCAL_CA_DIR, f)) : [];
  const pem = files.map((f) => readFileSync(f, "utf8").trim()).filter(Boolean).join("\n");
  if (pem.length > MAX_CA_BYTES) throw new Error(`the CA certificates to pass to the build (${files.join(", ")}) are ${pem.length} bytes; at most ${MAX_CA_BYTES} fit in a build argument: pass --ca-file with only the ones the build needs`);
  return pem;
}

export interface BuildOptions {
  baseImage?: string;
  tag?: string;
  /** BuildKit (as @pulumi/docker builds) instead of the classic builder (what every Docker engine has). */
  buildkit?: boolean;
  caFile?: string;
  /** Build output goes here instead of stderr. */
  log?: string;
  progress?: Progress;
}

export interface BuiltImage {
  id: string;
  tag: string;
  baseImage: string;
  base: "present" | "made";
  seconds: number;
}

export async function buildLocalImage(options: BuildOptions = {}): Promise<BuiltImage> {
  const progress = options.progress ?? ((line: string) => process.stderr.write(`image:local: ${line}\n`));
  requireDocker();
  // FUXI_LOCAL_BASE_IMAGE names another base to make (or use) for every build, the tests' included.
  const baseImage = options.baseImage ?? (process.env.FUXI_LOCAL_BASE_IMAGE || LOCAL_BASE_IMAGE);
  const tag = options.tag ?? LOCAL_IMAGE_TAG;
  if (options.baseImage && !imageExists(options.baseImage)) throw new Error(`--base ${options.baseImage}: no such image in the local Docker engine`);
  const base = await ensureLocalBase(baseImage, { log: options.log, progress });
  const buildArgs = localBuildArgs(baseImage, localCaCertificates(options.caFile));
  const work = mkdtempSync(join(tmpdir(), "fuxi-image-"));
  const iidFile = join(work, "iid");
  const args = ["build", "--network", "host", "--iidfile", iidFile, "--tag", tag, ...Object.keys(buildArgs).flatMap((name) => ["--build-arg", name]), RUNTIME_CONTEXT];
  // Values travel in the environment (`--build-arg NAME` reads it), not on the command line.
  const env = { ...process.env, ...buildArgs, DOCKER_BUILDKIT: options.buildkit ? "1" : "0" };
  progress(`building ${tag} from runtime/Dockerfile (CPU variant: ${Object.entries(buildArgs).filter(([k]) => k !== "BUILD_CA_CERTS").map(([k, v]) => `${k}=${v}`).join(" ")}${buildArgs.BUILD_CA_CERTS ? `, BUILD_CA_CERTS from ${options.caFile ?? LOCAL_CA_DIR}` : ""}; ${options.buildkit ? "BuildKit" : "classic builder"})`);
  const cli = options.buildkit ? buildkitDockerCli() : "docker";
  const started = performance.now();
  try {
    await runLogged(cli, args, options.log, { env });
    const id = readFileSync(iidFile, "utf8").trim();
    return { id, tag, baseImage, base, seconds: (performance.now() - started) / 1000 };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      base: { type: "string" },
      tag: { type: "string" },
      buildkit: { type: "boolean", default: false },
      "ca-file": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log("usage: npm run image:local -- [--base IMAGE] [--tag NAME] [--buildkit] [--ca-file PEM]");
    return;
  }
  try {
    const built = await buildLocalImage({ baseImage: values.base, tag: values.tag, buildkit: values.buildkit, caFile: values["ca-file"] });
    process.stderr.write(`image:local: built in ${built.seconds.toFixed(1)} s on ${built.baseImage} (${built.base}), tagged ${built.tag}\n`);
    process.stdout.write(`${built.id}\n`);
  } catch (error) {
    process.stderr.write(`image:local: ${(error as Error).message}\n`);
    process.exitCode = error instanceof DockerUnavailableError ? 69 : 1;
  }
}

if (require.main === module) void main();
