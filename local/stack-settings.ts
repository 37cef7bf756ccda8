/**
 * The local pipeline runs with the settings of a real stack: Pulumi.<stack>.yaml is validated by
 * the stack's own parser (config.ts) and turned into the Lambda and model environments by the
 * same functions the Pulumi components use, so local runs exercise what a deployment would.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { parseStackConfig, type StackConfig } from "../config";
import { triggerEnvironment, type QueueUrls } from "../components/trigger";
import { MARKER_NAME, RUNTIME_ENV } from "../runtime/src/contract";
import { runtimeEnvironment } from "../components/forecastModel";
import { REPO_ROOT } from "./runtime-process";
import type { NotificationRule } from "./s3-event";

export interface LocalStack {
  /** Where the settings came from. */
  source: string;
  config: StackConfig;
  bucket: string;
  modelName: string;
  /** The bucket notification the stack creates for the trigger. */
  rule: NotificationRule;
}

/** Reads `Pulumi.<stack>.yaml` from the repository root (its `fuxi:*` and `aws:region` keys). */
export function loadLocalStack(stack = "dev", overrides: { cascadeSteps?: number[]; maxConcurrentJobs?: number; serving?: "async" } = {}): LocalStack {
  const file = join(REPO_ROOT, `Pulumi.${stack}.yaml`);
  if (!existsSync(file)) throw new Error(`stack settings file ${file} does not exist (use --stack with one of the Pulumi.<stack>.yaml files)`);
  const document = parseYaml(readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
  const values = document?.config ?? {};
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) raw[key] = typeof value === "string" ? value : JSON.stringify(value);
  if (overrides.cascadeSteps) {
    const forecast = typeof values["fuxi:forecast"] === "object" && values["fuxi:forecast"] !== null ? values["fuxi:forecast"] : {};
    raw["fuxi:forecast"] = JSON.stringify({ ...forecast, cascadeSteps: overrides.cascadeSteps });
  }
  if (overrides.maxConcurrentJobs !== undefined) {
    const transform = typeof values["fuxi:transform"] === "object" && values["fuxi:transform"] !== null ? values["fuxi:transform"] : {};
    raw["fuxi:transform"] = JSON.stringify({ ...transform, maxConcurrentJobs: overrides.maxConcurrentJobs });
  }
  if (overrides.serving !== undefined) {
    const serving = typeof values["fuxi:serving"] === "object" && values["fuxi:serving"] !== null ? values["fuxi:serving"] : {};
    raw["fuxi:serving"] = JSON.stringify({ ...serving, mode: overrides.serving });
  }
  const region = typeof values["aws:region"] === "string" ? values["aws:region"] : "cn-northwest-1";
  let config: StackConfig;
  try {
    config = parseStackConfig({ stack, region, raw });
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
  const prefix = config.transform.jobNamePrefix;
  return {
    source: file,
    config,
    bucket: `${prefix}-data-local`,
    modelName: `${prefix}-model-local`,
    rule: { configurationId: `${prefix}-trigger`, prefix: config.prefixes.input, suffix: MARKER_NAME, events: ["s3:ObjectCreated:*"] },
  };
}

/** The trigger Lambda's environment exactly as components/trigger.ts sets it. */
export function localTriggerEnvironment(stack: LocalStack, queues: QueueUrls, asyncEndpointName?: string): Record<string, string> {
  const c = stack.config;
  const env = triggerEnvironment(
    {
      stack: c.stack,
      prefixes: c.prefixes,
      jobNamePrefix: c.transform.jobNamePrefix,
      cascadeSteps: c.forecast.cascadeSteps,
      compression: c.forecast.compression,
      instanceType: c.transform.instanceType,
      instanceCount: c.transform.instanceCount,
      invocationTimeoutSeconds: c.transform.invocationTimeoutSeconds,
      maxRetries: c.transform.maxRetries,
      amiVersion: c.transform.amiVersion,
      maxConcurrentJobs: c.transform.maxConcurrentJobs,
      operationalReserve: c.queue.operationalReserve,
      inputWaitMinutes: c.trigger.inputWaitMinutes,
      maxWaitHours: c.queue.maxWaitHours,
      backfillMaxWaitHours: c.queue.backfillMaxWaitHours,
      retrySeconds: c.queue.retrySeconds,
      functionTimeoutSeconds: c.lambda.timeoutSeconds,
      ...(asyncEndpointName ? { asyncEndpointName } : {}),
    },
    stack.bucket,
    stack.modelName,
    queues,
  );
  return { ...(env as Record<string, string>), S3_FORCE_PATH_STYLE: "true" };
}

/**
 * The model's Environment as components/forecastModel.ts builds it, with the local differences:
 * models from a folder (FUXI_MODEL_DIR) and the providers this machine has.
 */
export function localModelEnvironment(stack: LocalStack, modelDir: string, providers: ("cuda" | "cpu")[]): Record<string, string> {
  const { config } = stack;
  const env = runtimeEnvironment(
    // Locally the models come from a folder, as an extracted ModelDataUrl archive would.
    { bucket: "local", key: "model.tar.gz", kind: "archive" },
    { ...config.runtime, providers, allowCpu: providers.includes("cpu") },
    { bucket: stack.bucket, inputPrefix: config.prefixes.input, outputPrefix: config.prefixes.output },
    { instanceType: config.transform.instanceType, instanceCount: config.transform.instanceCount },
  );
  return { ...(env as Record<string, string>), [RUNTIME_ENV.modelDir]: modelDir };
}
