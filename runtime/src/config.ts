// Runtime settings from the environment (docs/contract.md, "Runtime environment").
import { availableParallelism, tmpdir } from "node:os";
import { bitsPerChannel, parseBitroundBits } from "./bitround-bits";
import { join } from "node:path";
import { BUCKET_NAME_PATTERN, isKeyPrefix, parseS3Uri, prefixesOverlap, RUNTIME_ENV, type RequestLanes } from "./contract";

export type Provider = "cuda" | "cpu";

export interface RuntimeConfig {
  /** The stack's bucket and prefixes: requests outside them are rejected. */
  lanes: RequestLanes;
  modelDir: string;
  modelS3Uri: string | undefined;
  modelCacheDir: string;
  /** The input and the step files in flight are written here (about 1.2 GB at most). */
  scratchDir: string;
  providers: Provider[];
  keepAllStages: boolean;
  /** Create the next stage's session in a second worker while the current stage runs (two stages resident). */
  prefetchNextStage: boolean;
  intraOpThreads: number | undefined;
  stepsInFlight: number;
  /** Threads compressing gzip/bitround steps (default: every core but the one feeding the GPU, at least 2). */
  encodeThreads: number;
  /** Mantissa bits kept per channel with `compression: "bitround"`. */
  bitroundBits: number[];
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

function lanes(env: Env): RequestLanes {
  const required = (name: string) => {
    const value = env[name];
    if (value === undefined) throw new ConfigError(name, "is not set; the runtime only serves requests inside the stack's data bucket and prefixes");
    return value.trim();
  };
  const bucket = required(RUNTIME_ENV.dataBucket);
  if (!BUCKET_NAME_PATTERN.test(bucket)) throw new ConfigError(RUNTIME_ENV.dataBucket, `must be an S3 bucket name, got ${JSON.stringify(bucket)}`);
  const prefix = (name: string) => {
    const value = required(name);
    if (!isKeyPrefix(value)) throw new ConfigError(name, `must be empty or end in "/" (and not start with "/"), got ${JSON.stringify(value)}`);
    return value;
  };
  const inputPrefix = prefix(RUNTIME_ENV.inputPrefix);
  const outputPrefix = prefix(RUNTIME_ENV.outputPrefix);
  if (prefixesOverlap(inputPrefix, outputPrefix)) {
    throw new ConfigError(RUNTIME_ENV.outputPrefix, `${JSON.stringify(outputPrefix)} overlaps ${RUNTIME_ENV.inputPrefix} ${JSON.stringify(inputPrefix)}: output would land where inputs start runs`);
  }
  return { bucket, inputPrefix, outputPrefix };
}

/** Reads and validates the runtime environment; throws ConfigError naming the variable. */
export function readConfig(env: Env): RuntimeConfig {
  const lanesOfStack = lanes(env);
  const providerNames = (env[RUNTIME_ENV.providers] ?? "cuda").split(",").map((p) => p.trim().toLowerCase()).filter(Boolean);
  if (providerNames.length === 0) throw new ConfigError(RUNTIME_ENV.providers, "lists no execution provider");
  const providers: Provider[] = [];
  for (const name of providerNames) {
    if (name !== "cuda" && name !== "cpu") throw new ConfigError(RUNTIME_ENV.providers, `unknown execution provider ${JSON.stringify(name)} (use cuda, cpu)`);
    if (providers.includes(name)) throw new ConfigError(RUNTIME_ENV.providers, `lists ${name} twice`);
    providers.push(name);
  }
  if (providers.includes("cpu") && !flag(env, RUNTIME_ENV.allowCpu)) {
    throw new ConfigError(
      RUNTIME_ENV.providers,
      "includes cpu but FUXI_ALLOW_CPU is not true; a production run must not fall back to CPU silently (set FUXI_ALLOW_CPU=true to allow it)",
    );
  }
  const modelS3Uri = env[RUNTIME_ENV.modelS3Uri]?.trim() || undefined;
  if (modelS3Uri !== undefined && !(parseS3Uri(modelS3Uri) && modelS3Uri.endsWith("/"))) {
    throw new ConfigError(RUNTIME_ENV.modelS3Uri, `must look like s3://bucket/prefix/ (ending in /), got ${JSON.stringify(modelS3Uri)}`);
  }
  const instanceType = env[RUNTIME_ENV.instanceType]?.trim() || null;
  if (instanceType !== null && !/^ml\.[a-z0-9]+\.[a-z0-9]+$/.test(instanceType)) {
    throw new ConfigError(RUNTIME_ENV.instanceType, `must look like ml.<family>.<size>, got ${JSON.stringify(env[RUNTIME_ENV.instanceType])}`);
  }
  return {
    lanes: lanesOfStack,
    modelDir: env[RUNTIME_ENV.modelDir]?.trim() || "/opt/ml/model",
    modelS3Uri,
    modelCacheDir: env[RUNTIME_ENV.modelCacheDir]?.trim() || "/tmp/fuxi-model",
    scratchDir: env[RUNTIME_ENV.scratchDir]?.trim() || join(tmpdir(), "fuxi-scratch"),
    providers,
    keepAllStages: flag(env, RUNTIME_ENV.keepAllStages),
    prefetchNextStage: flag(env, RUNTIME_ENV.prefetchNextStage),
    intraOpThreads: integer(env, RUNTIME_ENV.intraOpThreads, 1, 1024),
    stepsInFlight: integer(env, RUNTIME_ENV.stepsInFlight, 1, 8) ?? 2,
    encodeThreads: integer(env, RUNTIME_ENV.encodeThreads, 1, 64) ?? Math.max(2, availableParallelism() - 1),
    bitroundBits: bitroundBitsOf(env),
    logLevel: env[RUNTIME_ENV.logLevel]?.trim() || "info",
    port: integer(env, RUNTIME_ENV.port, 1, 65535) ?? 8080,
    instanceType,
    instanceCount: integer(env, RUNTIME_ENV.instanceCount, 1, 100) ?? null,
  };
}

function bitroundBitsOf(env: Env): number[] {
  try {
    return bitsPerChannel(parseBitroundBits(env[RUNTIME_ENV.bitroundBits]));
  } catch (error) {
    throw new ConfigError(RUNTIME_ENV.bitroundBits, (error as Error).message);
  }
}
