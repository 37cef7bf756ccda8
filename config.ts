/**
 * The stack's configuration: one zod schema for every `fuxi:*` key, with
 * defaults, and a validator that reports EVERY problem in one error, each line
 * naming the key path, the value found and what was expected.
 *
 * Pulumi stores structured config values as JSON strings; `parseStackConfig`
 * takes the raw `fuxi:<key>` → string map (as `pulumi.runtime.allConfig()` gives
 * it) so it can be tested without the Pulumi engine.
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { partitionFacts, partitionOfRegion } from "./components/partition";
import { BUCKET_NAME_PATTERN, cascadeStepsFault, COMPRESSIONS, JOB_NAME_PREFIX_MAX_LENGTH, MAX_TOTAL_STEPS, parseS3Uri, prefixesOverlap } from "./runtime/src/contract";
import { warmWindowOverlaps, type WarmWindow } from "./components/warmWindows";
import { ARCHIVE_AFTER_INFREQUENT_ACCESS_MIN_DAYS, ARCHIVE_CLASSES, DEFAULT_ARCHIVE_CLASS, INFREQUENT_ACCESS_MIN_AGE_DAYS, INSTANCE_PRICE_TABLE, STORAGE_CLASSES, type StorageClass } from "./cost";

export const CONFIG_NAMESPACE = "fuxi";

/** Each run queue's event source mapping: SQS's smallest maximumConcurrency. Admission is serialised anyway (trigger/admission.ts). */
export const ESM_MAXIMUM_CONCURRENCY = 2;
export const MIN_DISPATCHER_CONCURRENCY = 2 * ESM_MAXIMUM_CONCURRENCY;

/** GPU instance families Batch Transform offers (availability per region varies). */
export const GPU_INSTANCE_FAMILIES = ["ml.g4dn", "ml.g5", "ml.g6", "ml.p3"] as const;
const GPU_EXPECTATION = `expected ${GPU_INSTANCE_FAMILIES.map((f) => `${f}.*`).join(", ")}`;

/** Values CloudWatch Logs accepts for retentionInDays. */
export const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

export const TRANSFORM_AMI_VERSIONS = ["al2-ami-sagemaker-batch-gpu-470", "al2-ami-sagemaker-batch-gpu-535"] as const;
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;
/** The only key that may be stored as a secret: e-mail addresses are personal data. */
const SECRET_CAPABLE_KEYS = new Set(["alerts"]);

/**
 * `pulumi config set --path fuxi:x.y 20` may store "20" (a string): accept the
 * plain decimal and boolean spellings the CLI writes.
 */
const fromCliString = (v: unknown) => (typeof v === "string" && /^-?\d+$/.test(v.trim()) ? Number(v) : v);
const boolFromCliString = (v: unknown) => (v === "true" ? true : v === "false" ? false : v);

const int = (min: number, max: number) => {
  const msg = `is out of range; expected an integer from ${min} to ${max}`;
  return z.preprocess(fromCliString, z.number({ error: msg }).int(msg).min(min, msg).max(max, msg));
};
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `is not allowed; expected one of ${values.join(", ")}` });
/** A non-negative decimal (a price); the CLI may store "1.25" as a string. */
const fromCliDecimal = (v: unknown) => (typeof v === "string" && /^\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v);
const price = () =>
  z.preprocess(fromCliDecimal, z.number({ error: "is not a price; expected a non-negative number such as 1.25" }).nonnegative("is negative; expected a non-negative number such as 1.25").finite("is not a price; expected a finite number"));
/** Price per instance-hour, by instance type. */
const instancePrices = () => z.record(z.string().regex(/^ml\.[a-z0-9]+\.[a-z0-9]+$/, "is not an instance type; expected ml.<family>.<size>"), price()).default({});
const bool = () => z.preprocess(boolFromCliString, z.boolean({ error: "is not a boolean; expected true or false" }));

/** "" or a relative S3 key prefix ending in "/". */
const keyPrefix = z
  .string({ error: 'is not a key prefix; expected "" or a string ending in "/"' })
  .max(200, "is too long; expected at most 200 characters")
  .refine((p) => p === "" || (p.endsWith("/") && !p.startsWith("/") && !p.includes("//")), {
    error: 'is not a key prefix; expected "" or a path like "input/" (ends in "/", no leading "/", no empty segment)',
  })
  .refine((p) => /^[A-Za-z0-9!\-_.*'()/]*$/.test(p), {
    error: "has characters outside S3's safe set; expected letters, digits and !-_.*'()/",
  });

const days = (min: number, why: string) => {
  const msg = `is out of range; expected an integer from ${min} to 36500${why}`;
  return z.preprocess(fromCliString, z.number({ error: msg }).int(msg).min(min, msg).max(36500, msg));
};

/**
 * Lifecycle of the forecast output (`<outputPrefix>`): each step optional, days
 * counted from when S3 wrote the object. Order and S3's minimums are checked here,
 * so a bad rule fails at preview instead of at PutBucketLifecycleConfiguration.
 */
const outputRetention = z
  .strictObject({
    infrequentAccessAfterDays: days(INFREQUENT_ACCESS_MIN_AGE_DAYS, ` (S3 moves objects to STANDARD_IA at the earliest ${INFREQUENT_ACCESS_MIN_AGE_DAYS} days after creation)`).optional(),
    archiveAfterDays: days(0, "").optional(),
    archiveClass: oneOf(ARCHIVE_CLASSES).optional(),
    expireAfterDays: days(1, "").optional(),
  })
  .superRefine((r, ctx) => {
    if (r.infrequentAccessAfterDays === undefined && r.archiveAfterDays === undefined && r.expireAfterDays === undefined) {
      ctx.addIssue({ code: "custom", message: "sets no rule; expected at least one of infrequentAccessAfterDays, archiveAfterDays, expireAfterDays" });
    }
    if (r.archiveClass !== undefined && r.archiveAfterDays === undefined) {
      ctx.addIssue({ code: "custom", path: ["archiveClass"], message: "has no archiveAfterDays; expected archiveAfterDays with it (or no archiveClass)" });
    }
    const ia = r.infrequentAccessAfterDays;
    if (ia !== undefined && r.archiveAfterDays !== undefined && r.archiveAfterDays < ia + ARCHIVE_AFTER_INFREQUENT_ACCESS_MIN_DAYS) {
      ctx.addIssue({
        code: "custom",
        path: ["archiveAfterDays"],
        message: `is less than ${ARCHIVE_AFTER_INFREQUENT_ACCESS_MIN_DAYS} days after infrequentAccessAfterDays (${ia}); expected at least ${ia + ARCHIVE_AFTER_INFREQUENT_ACCESS_MIN_DAYS} (S3 keeps objects in STANDARD_IA ${ARCHIVE_AFTER_INFREQUENT_ACCESS_MIN_DAYS} days before archiving them)`,
      });
    }
    const lastTransition = Math.max(ia ?? -1, r.archiveAfterDays ?? -1);
    if (r.expireAfterDays !== undefined && r.expireAfterDays <= lastTransition) {
      ctx.addIssue({ code: "custom", path: ["expireAfterDays"], message: `is not after the last transition (day ${lastTransition}); expected more than ${lastTransition} (or drop the transitions)` });
    }
  });

const bucketName = z
  .string({ error: "is not a bucket name; expected 3-63 lowercase letters, digits, dots and hyphens" })
  .regex(BUCKET_NAME_PATTERN, "is not a bucket name; expected 3-63 lowercase letters, digits, dots and hyphens")
  // S3's rules beyond the pattern the rest of the pipeline checks: no "xn--" prefix, no "..".
  .refine((name) => !name.startsWith("xn--") && !name.includes(".."), { error: 'is not a bucket name; expected no "xn--" prefix and no ".."' });


/**
 * Job-name prefix. Lowercase only, although SageMaker job names allow upper
 * case: SageMaker lowercases names inside ARNs (so IAM patterns are lowercase)
 * and ECR repository and S3 bucket names, which derive from it, must be lowercase.
 */
const jobNamePrefix = z
  .string({ error: "is not a job-name prefix; expected 1-40 characters a-z, 0-9 and single hyphens" })
  .max(JOB_NAME_PREFIX_MAX_LENGTH, `is too long; expected at most ${JOB_NAME_PREFIX_MAX_LENGTH} characters (job names are at most 63)`)
  .regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, "is not a job-name prefix; expected 1-40 characters a-z, 0-9 and single hyphens, starting and ending with a letter or digit");

const cascadeSteps = z
  .array(int(0, MAX_TOTAL_STEPS), { error: "is not a step list; expected 1 to 3 integers, e.g. [20, 20, 20]" })
  .superRefine((steps, ctx) => {
    const fault = cascadeStepsFault(steps);
    if (fault) ctx.addIssue({ code: "custom", message: fault.at === undefined ? fault.fault : `has stage ${fault.at + 1} that ${fault.fault}` });
  });

export const SERVING_MODES = ["batch", "async"] as const;
export type ServingMode = (typeof SERVING_MODES)[number];
const MAX_WARM_WINDOWS = 12;
/** Instance families with NVMe instance storage (hardware-encrypted; no KmsKeyId allowed on the endpoint config). */
export const INSTANCE_STORE_FAMILIES = ["ml.g4dn", "ml.g5", "ml.g6"] as const;
export const hasInstanceStorage = (instanceType: string) => INSTANCE_STORE_FAMILIES.some((f) => instanceType.startsWith(`${f}.`));

const warmWindow: z.ZodType<WarmWindow, unknown> = z.strictObject({
  /** The cycles' nominal hours (UTC), e.g. [0, 6, 12, 18]. */
  cycleHoursUtc: z
    .array(int(0, 23), { error: "is not a list of hours; expected UTC hours 0-23 such as [0, 6, 12, 18]" })
    .min(1, "is empty; expected at least one UTC hour")
    .refine((h) => new Set(h).size === h.length, { error: "names an hour twice; expected each hour once" }),
  /** Minutes after each cycle hour when the warm instance is requested (when its data usually lands, less the start-up time). */
  startOffsetMinutes: int(0, 1439),
  /** How long the instance stays warm. */
  durationMinutes: int(5, 720),
}) as unknown as z.ZodType<WarmWindow, unknown>;

export const stackConfigSchema = z.strictObject({
  /** Created by the stack (default) or an existing bucket adopted by name. */
  dataBucket: z
    .strictObject({
      /**
       * Use this existing bucket instead of creating one. The stack reads its settings (the
       * policy pack checks them) and owns its notification configuration from then on.
       */
      existingName: bucketName.optional(),
      /**
       * An adopted bucket's notification configuration is replaced by the stack's (S3 keeps
       * one per bucket); preview fails while it holds rules the stack did not create, unless this is true.
       */
      replaceNotifications: bool().default(false),
      /** Let `pulumi destroy` delete a created bucket that still holds objects. */
      forceDestroy: bool().default(false),
      /** Pulumi `protect`: no update or destroy may delete the created bucket until this is turned off. */
      protect: bool().default(false),
      /** Pulumi `retainOnDelete`: a destroy or replacement drops the bucket from the stack and leaves it in S3. Default: true unless forceDestroy. */
      retainOnDelete: bool().optional(),
      /** Forecast request objects expire after this many days. */
      requestExpiryDays: int(1, 3650).default(30),
      /** Incomplete multipart uploads are aborted after this many days. */
      abortMultipartAfterDays: int(1, 365).default(2),
      /** Transitions and expiry of forecast output; none by default (outputs are kept in STANDARD forever). */
      outputRetention: outputRetention.optional(),
    })
    .default({ replaceNotifications: false, forceDestroy: false, protect: false, requestExpiryDays: 30, abortMultipartAfterDays: 2 }),
  prefixes: z
    .strictObject({
      input: keyPrefix.default("input/"),
      output: keyPrefix.default("output/"),
      requests: keyPrefix.default("requests/"),
    })
    .default({ input: "input/", output: "output/", requests: "requests/" }),
  /** FuXi weights (never shipped with the project: the user points at them). */
  model: z.strictObject({
    /** s3://bucket/prefix/ holding short.onnx, short, medium.onnx, medium, long.onnx, long; or s3://bucket/key.tar.gz of the same six files. */
    artifacts: z
      .string({ error: "is required; expected s3://bucket/prefix/ (the six model files) or s3://bucket/key.tar.gz" })
      .refine((u) => { const l = parseS3Uri(u); return l !== undefined && BUCKET_NAME_PATTERN.test(l.bucket) && l.key !== ""; }, { error: "is not an S3 URI; expected s3://bucket/prefix/ (the six model files) or s3://bucket/key.tar.gz", abort: true })
      .refine((u) => u.endsWith("/") || u.endsWith(".tar.gz"), { error: 'is neither a prefix nor an archive; expected a URI ending in "/" or ".tar.gz"' }),
  }, { error: "is required; expected an object with artifacts: s3://bucket/prefix/ or s3://bucket/key.tar.gz" }),
  forecast: z
    .strictObject({
      cascadeSteps: cascadeSteps.default([20, 20, 20]),
      compression: oneOf(COMPRESSIONS).default("none"),
      /** Runs expected per day: used only for the storage and cost estimates (the stack schedules nothing). */
      runsPerDay: z
        .preprocess(fromCliDecimal, z.number({ error: "is not a number; expected runs per day from 0.01 to 100, e.g. 4" }).min(0.01, "is out of range; expected runs per day from 0.01 to 100").max(100, "is out of range; expected runs per day from 0.01 to 100"))
        .default(4),
    })
    .default({ cascadeSteps: [20, 20, 20], compression: "none", runsPerDay: 4 }),
  transform: z
    .strictObject({
      instanceType: z
        .string({ error: `is not an instance type; ${GPU_EXPECTATION}` })
        .refine((t) => GPU_INSTANCE_FAMILIES.some((f) => new RegExp(`^${f.replace(".", "\\.")}\\.[0-9a-z]+$`).test(t)), { error: `has no GPU; ${GPU_EXPECTATION}` })
        .default("ml.g4dn.xlarge"),
      instanceCount: int(1, 100).default(1),
      /** ModelClientConfig.InvocationsTimeoutInSeconds: a whole cascade runs inside one invocation. */
      invocationTimeoutSeconds: int(1, 3600).default(3600),
      /** ModelClientConfig.InvocationsMaxRetries. */
      maxRetries: int(0, 3).default(1),
      amiVersion: oneOf(TRANSFORM_AMI_VERSIONS).optional(),
      /** Default `fuxi-<stack>`; also the base of every resource name. */
      jobNamePrefix: jobNamePrefix.optional(),
      /** The stack never has more InProgress transform jobs than this; size it to the account's instance quota (docs/trigger.md). */
      maxConcurrentJobs: int(1, 100).default(1),
    })
    .default({ instanceType: "ml.g4dn.xlarge", instanceCount: 1, invocationTimeoutSeconds: 3600, maxRetries: 1, maxConcurrentJobs: 1 }),
  trigger: z
    .strictObject({
      /** A run folder without its .nc is looked at again until this long after the marker. */
      inputWaitMinutes: int(0, 1440).default(30),
    })
    .default({ inputWaitMinutes: 30 }),
  /** The run queues (docs/trigger.md, "Run queue"). */
  queue: z
    .strictObject({
      /** Slots of transform.maxConcurrentJobs backfill runs leave free for marker-driven runs. */
      operationalReserve: int(0, 100).default(1),
      /** A marker-driven run goes to the dead-letter queue after waiting this long (unless the backlog is moving). */
      maxWaitHours: int(1, 312).default(24),
      /** The same for backfill runs (campaigns are long; SQS keeps messages 14 days). */
      backfillMaxWaitHours: int(1, 312).default(312),
      /** How often a waiting run looks for a free slot. */
      retrySeconds: int(10, 900).default(60),
      /** Alarm when the oldest waiting marker-driven run is older than this. */
      oldestRunAlarmMinutes: int(5, 20160).default(120),
    })
    .default({ operationalReserve: 1, maxWaitHours: 24, backfillMaxWaitHours: 312, retrySeconds: 60, oldestRunAlarmMinutes: 120 }),
  lambda: z
    .strictObject({
      memoryMb: int(128, 10240).default(256),
      timeoutSeconds: int(1, 900).default(60),
      /** At least 4: each of the two queues' event source mappings runs up to 2 dispatchers (their minimum). */
      reservedConcurrency: int(1, 1000).default(4),
      logRetentionDays: z.preprocess(fromCliString, z
        .number({ error: `is not a retention; expected one of ${LOG_RETENTION_DAYS.join(", ")}` })
        .refine((d) => (LOG_RETENTION_DAYS as readonly number[]).includes(d), { error: `is not a retention CloudWatch accepts; expected one of ${LOG_RETENTION_DAYS.join(", ")}` }))
        .default(30),
    })
    .default({ memoryMb: 256, timeoutSeconds: 60, reservedConcurrency: 4, logRetentionDays: 30 }),
  /** Runtime settings that become the SageMaker model's Environment. */
  runtime: z
    .strictObject({
      providers: z
        .array(oneOf(["cuda", "cpu"]))
        .min(1, "is empty; expected a list such as [cuda]")
        .refine((p) => new Set(p).size === p.length, { error: "names a provider twice; expected each of cuda, cpu at most once" })
        .default(["cuda"]),
      allowCpu: bool().default(false),
      keepAllStages: bool().default(false),
      /** FUXI_PREFETCH_NEXT_STAGE: only where the instance's memory holds two stages at once. */
      prefetchNextStage: bool().default(false),
      stepsInFlight: int(1, 8).default(2),
      intraOpThreads: int(1, 256).optional(),
      logLevel: oneOf(LOG_LEVELS).default("info"),
    })
    .default({ providers: ["cuda"], allowCpu: false, keepAllStages: false, prefetchNextStage: false, stepsInFlight: 2, logLevel: "info" }),
  image: z
    .strictObject({
      /** Docker build context, relative to the project root. */
      context: z.string({ error: "is not a path; expected a folder relative to the project root" }).min(1, "is empty; expected a folder such as runtime").default("runtime"),
      /** Dockerfile, relative to the context. */
      dockerfile: z.string({ error: "is not a path; expected a file relative to the context" }).min(1, "is empty; expected a file name such as Dockerfile").default("Dockerfile"),
      /** SageMaker GPU hosts are x86_64. */
      platform: z.literal("linux/amd64", { error: "is not supported; expected linux/amd64 (SageMaker GPU instances are x86_64)" }).default("linux/amd64"),
      /** Passed as build arg BASE_IMAGE; default: the AWS Deep Learning Container of the stack's region. */
      baseImage: z.string({ error: "is not an image reference; expected registry/repository:tag" }).regex(/^[^\s:]+(:\d+)?\/[^\s]+(:[\w.-]+|@sha256:[0-9a-f]{64})$/, "is not an image reference; expected registry/repository:tag or @sha256:digest").optional(),
      /** ECR lifecycle keeps this many images. */
      keepImages: int(1, 1000).default(10),
      /** Let `pulumi destroy` delete the ECR repository while it still holds images. */
      forceDelete: bool().default(false),
    })
    .default({ context: "runtime", dockerfile: "Dockerfile", platform: "linux/amd64", keepImages: 10, forceDelete: false }),
  alerts: z
    .strictObject({
      emails: z.array(z.email({ error: "is not an e-mail address; expected name@example.com" })).max(20, "has too many addresses; expected at most 20").default([]),
    })
    .default({ emails: [] }),
  /**
   * How runs are served (docs/serving.md): `batch` starts one Batch Transform job per run (nothing runs
   * between runs); `async` keeps a SageMaker asynchronous inference endpoint that scales to zero between
   * runs and holds warm capacity in the warmWindows.
   */
  serving: z
    .strictObject({
      mode: oneOf(SERVING_MODES).default("batch"),
      /** async only: times of day (UTC) when one instance is kept warm, so a cycle's run starts without provisioning. */
      warmWindows: z.array(warmWindow, { error: "is not a list of windows; expected e.g. [{cycleHoursUtc: [0, 6, 12, 18], startOffsetMinutes: 200, durationMinutes: 60}]" }).max(MAX_WARM_WINDOWS, `has too many windows; expected at most ${MAX_WARM_WINDOWS}`).default([]),
      /** async only: the autoscaling maximum; default and ceiling transform.maxConcurrentJobs (the stack's cap on concurrent forecasts). */
      maxInstances: int(1, 100).optional(),
      /** async only: minutes an idle endpoint waits after a scale-in before the next (the target-tracking scale-in cooldown). */
      scaleInCooldownMinutes: int(1, 1440).default(15),
      /**
       * async only: KMS key for the endpoint's ML storage volume. Required for instance types without
       * instance storage (ml.p3.*); refused for those with NVMe instance storage (ml.g4dn, ml.g5, ml.g6),
       * which SageMaker encrypts in hardware and where CreateEndpointConfig rejects a KmsKeyId.
       */
      volumeKmsKeyArn: z.string({ error: "is not a KMS key ARN; expected arn:<partition>:kms:<region>:<account>:key/<id>" }).regex(/^arn:aws(-cn)?:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/, "is not a KMS key ARN; expected arn:<partition>:kms:<region>:<account>:key/<id>").optional(),
    })
    .default({ mode: "batch", warmWindows: [], scaleInCooldownMinutes: 15 }),
  /** Prices for the cost estimates (no built-in prices: they differ by region and change). */
  cost: z
    .strictObject({
      currency: z.string({ error: "is not a currency; expected a 3-letter code such as CNY or USD" }).regex(/^[A-Z]{3}$/, "is not a currency code; expected 3 capital letters such as CNY or USD"),
      /** Price per instance-hour by SageMaker instance type (the Batch Transform column of the region's pricing page). */
      instanceHour: instancePrices(),
      /** The same for endpoint instances (the real-time/asynchronous inference column): what serving.mode "async" is billed. */
      endpointInstanceHour: instancePrices(),
      /** Price per GB-month (GB = 2^30 bytes) by S3 storage class. */
      storageGbMonth: z.partialRecord(oneOf(STORAGE_CLASSES), price()).default({}),
    })
    .optional(),
  tags: z
    .record(
      z.string().min(1).max(128, "is too long; expected a tag key of at most 128 characters").refine((k) => !k.toLowerCase().startsWith("aws:"), { error: 'is reserved; expected a tag key not starting with "aws:"' }),
      z.string({ error: "is not a string; expected a tag value of at most 256 characters" }).max(256, "is too long; expected a tag value of at most 256 characters"),
    )
    .default({}),
});

export type StackConfigInput = z.input<typeof stackConfigSchema>;
type Parsed = z.output<typeof stackConfigSchema>;

export interface ModelArtifacts {
  uri: string;
  bucket: string;
  /** Key of the archive, or the prefix ending in "/" */
  key: string;
  kind: "prefix" | "archive";
}

export interface StackConfig extends Omit<Parsed, "model" | "transform" | "image" | "dataBucket" | "serving"> {
  /** maxInstances resolved (default: transform.maxConcurrentJobs). */
  serving: Parsed["serving"] & { maxInstances: number };
  dataBucket: Parsed["dataBucket"] & { retainOnDelete: boolean };
  stack: string;
  region: string;
  model: ModelArtifacts;
  transform: Parsed["transform"] & { jobNamePrefix: string };
  image: Parsed["image"] & { baseImage: string };
  /** Top-level keys stored as secrets (only `alerts` may be). */
  secretKeys: string[];
}

export class StackConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid stack configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  ${problems.join("\n  ")}`);
    this.name = "StackConfigError";
  }
}

/**
 * Default base image: the AWS Deep Learning Container (CUDA 12.4 + cuDNN 9, what
 * onnxruntime-node's cuda12 build needs) from the stack's own region, so China
 * stacks never pull from Docker Hub.
 */
export function defaultBaseImage(region: string): string {
  const facts = partitionFacts(partitionOfRegion(region));
  return `${facts.deepLearningContainersAccount}.dkr.ecr.${region}.${facts.dnsSuffix}/pytorch-inference:2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker`;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[k as string];
  }
  return v;
}

/** Setting names allowed at a path of nested objects. */
function knownKeys(path: readonly PropertyKey[]): string[] {
  let schema: z.ZodType = stackConfigSchema;
  for (const key of path) {
    while (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) schema = schema.unwrap() as z.ZodType;
    if (!(schema instanceof z.ZodObject)) return [];
    schema = (schema.shape as Record<string, z.ZodType>)[String(key)];
    if (schema === undefined) return [];
  }
  while (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) schema = schema.unwrap() as z.ZodType;
  if (schema instanceof z.ZodRecord && schema.keyType instanceof z.ZodEnum) return schema.keyType.options.map(String);
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

function describe(value: unknown): string {
  if (value === undefined) return "(missing)";
  const s = JSON.stringify(value);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

function keyPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return CONFIG_NAMESPACE;
  const [top, ...rest] = path.map(String);
  // Numbers and keys with dots (instance types) in the bracket form `pulumi config set --path` takes.
  return `${CONFIG_NAMESPACE}:${top}${rest.map((p) => (/^\d+$/.test(p) ? `[${p}]` : p.includes(".") ? `[${JSON.stringify(p)}]` : `.${p}`)).join("")}`;
}



/**
 * Validate and default the stack config.
 * @param raw `fuxi:<key>` → string (JSON for structured values), as Pulumi stores it.
 * @param secretKeys full keys (`fuxi:alerts`) that are stored as secrets.
 */
export function parseStackConfig(opts: { stack: string; region: string; raw: Record<string, string>; secretKeys?: readonly string[] }): StackConfig {
  const problems: string[] = [];
  const input: Record<string, unknown> = {};
  for (const [fullKey, text] of Object.entries(opts.raw)) {
    if (!fullKey.startsWith(`${CONFIG_NAMESPACE}:`)) continue;
    const key = fullKey.slice(CONFIG_NAMESPACE.length + 1);
    try {
      input[key] = JSON.parse(text);
    } catch {
      input[key] = text; // a plain string value; the schema says whether that is allowed
    }
  }
  const secretKeys = (opts.secretKeys ?? []).filter((k) => k.startsWith(`${CONFIG_NAMESPACE}:`)).map((k) => k.slice(CONFIG_NAMESPACE.length + 1));
  for (const key of secretKeys) {
    if (!SECRET_CAPABLE_KEYS.has(key)) {
      problems.push(`${CONFIG_NAMESPACE}:${key}: (secret) is stored as a secret but would be written into resource names and ARNs; expected a plain value (only ${[...SECRET_CAPABLE_KEYS].map((k) => `${CONFIG_NAMESPACE}:${k}`).join(", ")} may be secret)`);
    }
  }
  let region = opts.region;
  try {
    partitionOfRegion(region);
  } catch (e) {
    problems.push((e as Error).message);
    region = "us-east-1"; // keep validating the rest
  }

  const result = stackConfigSchema.safeParse(input);
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === "unrecognized_keys") {
        for (const k of issue.keys) {
          const path = [...issue.path, k];
          problems.push(`${keyPath(path)}: ${describe(valueAt(input, path))} is not a known setting; expected one of ${knownKeys(issue.path).join(", ")}`);
        }
      } else if (issue.code === "invalid_key") {
        // A record key (a tag name) is at fault, not its value.
        const key = issue.path[issue.path.length - 1];
        problems.push(`${keyPath(issue.path)}: ${describe(key)} ${issue.issues[0]?.message ?? "is not an allowed key"}`);
      } else {
        problems.push(`${keyPath(issue.path)}: ${describe(valueAt(input, issue.path))} ${issue.message}`);
      }
    }
  }

  // Cross-field checks run on whatever prefixes are readable, so one error still lists everything.
  const prefixes = { input: "input/", output: "output/", requests: "requests/" } as Record<string, unknown>;
  for (const name of Object.keys(prefixes)) {
    const v = valueAt(input, ["prefixes", name]);
    if (v !== undefined) prefixes[name] = v;
  }
  const pairs = [["input", "output"], ["input", "requests"], ["output", "requests"]] as const;
  for (const [an, bn] of pairs) {
    const a = prefixes[an], b = prefixes[bn];
    if (typeof a === "string" && typeof b === "string" && prefixesOverlap(a, b)) {
      problems.push(`${CONFIG_NAMESPACE}:prefixes.${bn}: ${describe(b)} overlaps prefixes.${an} ${describe(a)}; expected disjoint prefixes (runtime output or requests under the input prefix would re-trigger runs)`);
    }
  }
  if (!result.success || problems.length) throw new StackConfigError(problems);
  const c = result.data;

  const jobPrefix = c.transform.jobNamePrefix ?? `fuxi-${opts.stack}`;
  if (c.transform.jobNamePrefix === undefined && !/^[a-z0-9]+(-[a-z0-9]+)*$/.test(jobPrefix) || jobPrefix.length > 40) {
    problems.push(`${CONFIG_NAMESPACE}:transform.jobNamePrefix: (missing) cannot default to ${describe(jobPrefix)} for stack ${describe(opts.stack)}; expected it set explicitly to 1-40 characters a-z, 0-9 and single hyphens`);
  }
  if (c.runtime.prefetchNextStage && c.runtime.keepAllStages) {
    problems.push(`${CONFIG_NAMESPACE}:runtime.prefetchNextStage: true has nothing to do with runtime.keepAllStages true (all three stages are loaded at start and stay); expected one of the two`);
  }
  if (c.lambda.reservedConcurrency < MIN_DISPATCHER_CONCURRENCY) {
    problems.push(`${CONFIG_NAMESPACE}:lambda.reservedConcurrency: ${c.lambda.reservedConcurrency} is below ${MIN_DISPATCHER_CONCURRENCY}; expected at least ${MIN_DISPATCHER_CONCURRENCY} (two queues, each polled by up to ${ESM_MAXIMUM_CONCURRENCY} dispatchers: fewer would throttle the event source mappings)`);
  }
  const retention = c.dataBucket.outputRetention;
  if (retention && c.dataBucket.existingName !== undefined) {
    problems.push(`${CONFIG_NAMESPACE}:dataBucket.outputRetention: ${describe(retention)} cannot apply to an adopted bucket (dataBucket.existingName); expected no outputRetention (an adopted bucket's lifecycle stays its owner's: set the rules on the bucket itself)`);
  }
  if (c.cost) {
    // Only the serving mode's own price is required: batch runs are billed as transform jobs, async ones as endpoint instances.
    const type = c.transform.instanceType;
    const table = INSTANCE_PRICE_TABLE[c.serving.mode];
    if (c.cost[table][type] === undefined) {
      const endpoint = c.serving.mode === "async";
      problems.push(`${CONFIG_NAMESPACE}:cost.${table}: ${describe(c.cost[table])} has no price for ${JSON.stringify(type)} (transform.instanceType${endpoint ? ', served by the async endpoint (serving.mode "async")' : ""}); expected a price per instance-hour for every instance type in use${endpoint ? " (the real-time/asynchronous inference column of the pricing page, not Batch Transform's)" : ""}`);
    }
    const classes: StorageClass[] = ["STANDARD"];
    if (retention?.infrequentAccessAfterDays !== undefined) classes.push("STANDARD_IA");
    if (retention?.archiveAfterDays !== undefined) classes.push(retention.archiveClass ?? DEFAULT_ARCHIVE_CLASS);
    const unpriced = classes.filter((k) => c.cost!.storageGbMonth[k] === undefined);
    if (unpriced.length > 0) {
      problems.push(`${CONFIG_NAMESPACE}:cost.storageGbMonth: ${describe(c.cost.storageGbMonth)} has no price for ${unpriced.join(", ")}; expected a price per GB-month for every storage class the output uses (${classes.join(", ")})`);
    }
  }
  problems.push(...servingProblems(c.serving, c.transform.instanceType, c.transform.maxConcurrentJobs));
  if (!c.runtime.providers.includes("cuda") && !c.runtime.allowCpu) {
    problems.push(`${CONFIG_NAMESPACE}:runtime.providers: ${describe(c.runtime.providers)} has no GPU provider; expected "cuda" in the list (or runtime.allowCpu: true)`);
  }
  if (problems.length) throw new StackConfigError(problems);

  const m = parseS3Uri(c.model.artifacts)!;
  return {
    ...c,
    stack: opts.stack,
    region,
    model: { uri: c.model.artifacts, bucket: m.bucket, key: m.key, kind: c.model.artifacts.endsWith("/") ? "prefix" : "archive" },
    transform: { ...c.transform, jobNamePrefix: jobPrefix },
    dataBucket: { ...c.dataBucket, retainOnDelete: c.dataBucket.retainOnDelete ?? !c.dataBucket.forceDestroy },
    image: { ...c.image, baseImage: c.image.baseImage ?? defaultBaseImage(region) },
    serving: { ...c.serving, maxInstances: c.serving.maxInstances ?? c.transform.maxConcurrentJobs },
    secretKeys,
  };
}

/** Cross-field rules of fuxi:serving (docs/serving.md); `cap` is transform.maxConcurrentJobs. */
function servingProblems(serving: Parsed["serving"], instanceType: string, cap: number): string[] {
  const problems: string[] = [];
  const key = `${CONFIG_NAMESPACE}:serving`;
  if (serving.mode === "batch") {
    for (const k of ["warmWindows", "maxInstances", "volumeKmsKeyArn"] as const) {
      const v = serving[k];
      if (v !== undefined && !(Array.isArray(v) && v.length === 0)) problems.push(`${key}.${k}: ${describe(v)} applies only to serving.mode "async"; expected serving.mode: async, or no ${k}`);
    }
    return problems;
  }
  if (serving.maxInstances !== undefined && serving.maxInstances > cap) {
    problems.push(`${key}.maxInstances: ${serving.maxInstances} is above transform.maxConcurrentJobs (${cap}); expected at most ${cap} (the stack never runs more forecasts at once than its cap)`);
  }
  for (const o of warmWindowOverlaps(serving.warmWindows)) {
    problems.push(`${key}.warmWindows[${o.second}]: ${describe(serving.warmWindows[o.second])} overlaps warmWindows[${o.first}] at ${o.at} UTC; expected windows that do not overlap (the end of one would scale in during the other)`);
  }
  const storage = hasInstanceStorage(instanceType);
  if (!storage && serving.volumeKmsKeyArn === undefined) {
    problems.push(`${key}.volumeKmsKeyArn: (missing) is required for ${instanceType} (transform.instanceType), which has no instance storage; expected a KMS key ARN for the endpoint's ML storage volume`);
  }
  if (storage && serving.volumeKmsKeyArn !== undefined) {
    problems.push(`${key}.volumeKmsKeyArn: ${describe(serving.volumeKmsKeyArn)} cannot apply to ${instanceType} (transform.instanceType): its NVMe instance storage is encrypted in hardware and CreateEndpointConfig rejects a KmsKeyId for it; expected no volumeKmsKeyArn`);
  }
  return problems;
}

/** Read and validate the running stack's config (throws StackConfigError before any resource exists). */
export function readStackConfig(): StackConfig {
  // isConfigSecret is exported by the SDK's runtime but marked @internal (no public
  // way to ask whether a key is secret); the alternative is a secret Output per key.
  const { isConfigSecret } = require("@pulumi/pulumi/runtime/config") as { isConfigSecret(key: string): boolean };
  const raw = pulumi.runtime.allConfig();
  const secretKeys = Object.keys(raw).filter((k) => isConfigSecret(k));
  return parseStackConfig({ stack: pulumi.getStack(), region: raw["aws:region"] ?? "", raw, secretKeys });
}
