/**
 * Starts the runtime image the way Batch Transform starts a model container: `docker run <image> serve`,
 * the model files read-only at /opt/ml/model, the job's environment, the image's own (non-root) user.
 * Host networking stands in for the instance network, so the container reaches the loopback S3 and the
 * caller reaches the container's port. `docker stop` sends SIGTERM, as SageMaker does at a job's end.
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { createServer } from "node:net";
import { promisify } from "node:util";
import { freePort, superviseChild } from "./runtime-process";
import type { ContainerLauncher, RunningContainer } from "./transform-runner";

/** Where SageMaker places the model artifacts in the container, and the image's FUXI_MODEL_DIR. */
export const CONTAINER_MODEL_DIR = "/opt/ml/model";
/** The port SageMaker sends /ping and /invocations to. */
export const SAGEMAKER_PORT = 8080;

export interface RuntimeContainerOptions {
  /** Image ID or reference. */
  image: string;
  /** Added to the job environment: S3 endpoint, credentials, region (the instance role's part). */
  hostEnv: Record<string, string>;
  /** Every stdout/stderr line of the container is appended here. */
  logFile: string;
  onLogRecord?: (record: Record<string, unknown>) => void;
  /**
   * "sagemaker": listen on 8080 as in SageMaker (fails when the host's 8080 is taken);
   * "free": a free port passed as SAGEMAKER_BIND_TO_PORT (several runs side by side).
   */
  port?: "sagemaker" | "free";
  /** Keep the container after it exits (to inspect it); the caller then runs `docker rm`. */
  keep?: boolean;
  /** Container name prefix (a random suffix is added). */
  namePrefix?: string;
}

export interface RunningRuntimeContainer extends RunningContainer {
  name: string;
  /** The container's exit code (what `docker run` returns). */
  exitCode: Promise<number | null>;
}

/** Seconds `docker stop` waits after SIGTERM before SIGKILL: a step boundary comes well within it. */
const STOP_GRACE_SECONDS = 30;

export function runtimeContainerLauncher(options: RuntimeContainerOptions): ContainerLauncher {
  return (job) => startRuntimeContainer(options, job.environment, job.jobName);
}

export async function startRuntimeContainer(options: RuntimeContainerOptions, environment: Record<string, string>, label = "runtime"): Promise<RunningRuntimeContainer> {
  const name = `${options.namePrefix ?? "fuxi-local"}-${label.toLowerCase().replace(/[^a-z0-9_.-]/g, "-").slice(0, 40)}-${randomBytes(3).toString("hex")}`;
  const env: Record<string, string> = { ...options.hostEnv, ...environment };
  // A host folder of model files becomes the read-only /opt/ml/model mount (as ModelDataUrl's content
  // lands there); the image's FUXI_MODEL_DIR already points at it.
  const mounts: string[] = [];
  if (env.FUXI_MODEL_DIR !== undefined) {
    mounts.push("--volume", `${env.FUXI_MODEL_DIR}:${CONTAINER_MODEL_DIR}:ro`);
    delete env.FUXI_MODEL_DIR;
  }
  let port = SAGEMAKER_PORT;
  if (options.port === "free") {
    port = await freePort();
    env.SAGEMAKER_BIND_TO_PORT = String(port);
  } else if (!(await portIsFree(SAGEMAKER_PORT))) {
    throw new Error(`port ${SAGEMAKER_PORT} on this host is in use: the container listens there as in SageMaker (host network); stop what holds it`);
  }
  const log = createWriteStream(options.logFile, { flags: "a" });
  // `--env NAME` takes the value from docker's own environment: no values on the command line.
  const child = spawn(
    "docker",
    ["run", ...(options.keep ? [] : ["--rm"]), "--name", name, "--network", "host", "--stop-timeout", String(STOP_GRACE_SECONDS), ...mounts, ...Object.keys(env).sort().flatMap((key) => ["--env", key]), options.image, "serve"],
    { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const supervised = superviseChild(child, { url: `http://127.0.0.1:${port}`, log, onLogRecord: options.onLogRecord }, async (exited) => {
    // Asynchronously: the loopback S3 in this process must keep serving the uploads the runtime finishes.
    await promisify(execFile)("docker", ["stop", "--time", String(STOP_GRACE_SECONDS), name]).catch(() => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });
    await exited;
  });
  return { ...supervised, name };
}

/** Removes a container kept with `keep: true` (ignores one that is already gone). */
export function removeContainer(name: string): void {
  spawnSync("docker", ["rm", "--force", name], { stdio: "ignore" });
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, () => server.close(() => resolve(true)));
  });
}
