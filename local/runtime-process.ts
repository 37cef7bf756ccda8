/**
 * Starts the real runtime server (`tsx runtime/src/main.ts serve`) as a child process, the way
 * Batch Transform starts the container (`docker run <image> serve`): the job's environment plus
 * what the host adds (here: where S3 is and its credentials, as the instance role would).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { ContainerLauncher, RunningContainer } from "./transform-runner";
import { RUNTIME_PROCESS_ENV } from "../runtime/src/contract";

export const REPO_ROOT = join(__dirname, "..");

/**
 * Node arguments that run the runtime from source in this process: `--import tsx` rather than the
 * tsx CLI, which would fork a grandchild that survives a SIGKILL of the child.
 */
export const RUNTIME_FROM_SOURCE = ["--import", "tsx", join(REPO_ROOT, "runtime", "src", "main.ts")];

export interface RuntimeProcessOptions {
  /** Added to the job environment: S3 endpoint, credentials, region. */
  hostEnv: Record<string, string>;
  /** Every stdout/stderr line of the child is appended here. */
  logFile: string;
  /** Each pino JSON line the runtime writes. */
  onLogRecord?: (record: Record<string, unknown>) => void;
}

export function runtimeProcessLauncher(options: RuntimeProcessOptions): ContainerLauncher {
  return async ({ environment }) => {
    const port = await freePort();
    const log = createWriteStream(options.logFile, { flags: "a" });
    const child = spawn(process.execPath, [...RUNTIME_FROM_SOURCE, "serve"], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...RUNTIME_PROCESS_ENV, ...options.hostEnv, ...environment, SAGEMAKER_BIND_TO_PORT: String(port) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return superviseChild(child, { url: `http://127.0.0.1:${port}`, log, onLogRecord: options.onLogRecord }, async (exited) => {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killer);
    });
  };
}

/**
 * The part every launcher shares: each stdout/stderr line of the child goes to the log file and,
 * when it is a JSON log record, to `onLogRecord`; `exited` describes how the child ended with its
 * last lines; `stop` runs `terminate` once (only while the child still runs) and closes the log.
 */
export function superviseChild(
  child: ChildProcess,
  options: { url: string; log: WriteStream; onLogRecord?: (record: Record<string, unknown>) => void },
  terminate: (exited: Promise<string>) => Promise<void>,
): RunningContainer & { exitCode: Promise<number | null> } {
  const lastLines: string[] = [];
  const onLine = (line: string) => {
    options.log.write(`${line}\n`);
    lastLines.push(line);
    if (lastLines.length > 5) lastLines.shift();
    if (!line.startsWith("{")) return;
    try {
      options.onLogRecord?.(JSON.parse(line));
    } catch {
      // not a JSON log record: kept in the log file only
    }
  };
  createInterface({ input: child.stdout! }).on("line", onLine);
  createInterface({ input: child.stderr! }).on("line", onLine);
  let exitCode: number | null = null;
  const exited = new Promise<string>((resolve) => {
    child.once("exit", (code, signal) => {
      exitCode = code;
      resolve(`${signal ? `signal ${signal}` : `exit code ${code}`}; last output: ${lastLines.join(" | ").slice(-800)}`);
    });
    child.once("error", (error) => resolve(`could not start: ${error.message}`));
  });
  let stopping: Promise<void> | undefined;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) await terminate(exited);
    await exited;
    await new Promise<void>((resolve) => options.log.end(() => resolve()));
  };
  return {
    url: options.url,
    exited,
    exitCode: exited.then(() => exitCode),
    stop: () => (stopping ??= stop()),
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}
