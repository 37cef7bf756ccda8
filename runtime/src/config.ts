// Runtime settings from the environment (docs/contract.md, "Runtime environment").
import { tmpdir } from "node:os";
import { join } from "node:path";

export type Provider = "cuda" | "cpu";

export interface RuntimeConfig {
  modelDir: string;
  modelS3Uri: string | undefined;
  modelCacheDir: string;
  /** The input and the step files in flight are written here (about 1.2 GB at most). */
  scratchDir: string;
  providers: Provider[];
  keepAllStages: boolean;
  intraOpThreads: number | undefined;
  stepsInFlight: number;
  logLevel: string;
  port: number;
  /** FUXI_INSTANCE_TYPE / FUXI_INSTANCE_COUNT: recorded in the manifest's usage (null when unset). */
  instanceType: string | null;
  instanceCount: number | null;
}

export class ConfigError extends Error {
  constructor(readonly variable: string, readonly fault: string) {
    super(`${variable}: ${fault}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

function flag(env: Env, name: string): boolean {
  const value = (env[name] ?? "false").trim().toLowerCase();
  if (value === "true") return true;
  if (value === "false" || value === "") return false;
  throw new ConfigError(name, `must be "true" or "false", got ${JSON.stringify(env[name])}`);
}

function integer(env: Env, name: string, min: number, max: number): number | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw new ConfigError(name, `must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** Reads and validates the runtime environment; throws ConfigError naming the variable. */
export function readConfig(env: Env): RuntimeConfig {
  const providerNames = (env.FUXI_PROVIDERS ?? "cuda").split(",").map((p) => p.trim().toLowerCase()).filter(Boolean);
  if (providerNames.length === 0) throw new ConfigError("FUXI_PROVIDERS", "lists no execution provider");
  const providers: Provider[] = [];
  for (const name of providerNames) {
    if (name !== "cuda" && name !== "cpu") throw new ConfigError("FUXI_PROVIDERS", `unknown execution provider ${JSON.stringify(name)} (use cuda, cpu)`);
    if (providers.includes(name)) throw new ConfigError("FUXI_PROVIDERS", `lists ${name} twice`);
    providers.push(name);
  }
  if (providers.includes("cpu") && !flag(env, "FUXI_ALLOW_CPU")) {
    throw new ConfigError(
      "FUXI_PROVIDERS",
      "includes cpu but FUXI_ALLOW_CPU is not true; a production run must not fall back to CPU silently (set FUXI_ALLOW_CPU=true to allow it)",
    );
  }
  const modelS3Uri = env.FUXI_MODEL_S3_URI?.trim() || undefined;
  if (modelS3Uri !== undefined && !/^s3:\/\/[^/]+\/(.*\/)?$/.test(modelS3Uri)) {
    throw new ConfigError("FUXI_MODEL_S3_URI", `must look like s3://bucket/prefix/ (ending in /), got ${JSON.stringify(modelS3Uri)}`);
  }
  const instanceType = env.FUXI_INSTANCE_TYPE?.trim() || null;
  if (instanceType !== null && !/^ml\.[a-z0-9]+\.[a-z0-9]+$/.test(instanceType)) {
    throw new ConfigError("FUXI_INSTANCE_TYPE", `must look like ml.<family>.<size>, got ${JSON.stringify(env.FUXI_INSTANCE_TYPE)}`);
  }
  return {
    modelDir: env.FUXI_MODEL_DIR?.trim() || "/opt/ml/model",
    modelS3Uri,
    modelCacheDir: env.FUXI_MODEL_CACHE_DIR?.trim() || "/tmp/fuxi-model",
    scratchDir: env.FUXI_SCRATCH_DIR?.trim() || join(tmpdir(), "fuxi-scratch"),
    providers,
    keepAllStages: flag(env, "FUXI_KEEP_ALL_STAGES"),
    intraOpThreads: integer(env, "FUXI_INTRA_OP_THREADS", 1, 1024),
    stepsInFlight: integer(env, "FUXI_STEPS_IN_FLIGHT", 1, 8) ?? 2,
    logLevel: env.LOG_LEVEL?.trim() || "info",
    port: integer(env, "SAGEMAKER_BIND_TO_PORT", 1, 65535) ?? 8080,
    instanceType,
    instanceCount: integer(env, "FUXI_INSTANCE_COUNT", 1, 100) ?? null,
  };
}
