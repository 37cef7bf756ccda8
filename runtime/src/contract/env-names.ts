// Environment variable names of the trigger Lambda and the runtime container (docs/contract.md).

/** Set by components/trigger.ts, read by trigger/env.ts. */
export const TRIGGER_REQUIRED_ENV_NAMES = [
  "STACK_NAME",
  "DATA_BUCKET",
  "INPUT_PREFIX",
  "OUTPUT_PREFIX",
  "REQUESTS_PREFIX",
  "JOB_NAME_PREFIX",
  "MODEL_NAME",
  "CASCADE_STEPS",
  "OUTPUT_COMPRESSION",
  "TRANSFORM_INSTANCE_TYPE",
  "TRANSFORM_INSTANCE_COUNT",
  "INVOCATION_TIMEOUT_SECONDS",
  "INVOCATION_MAX_RETRIES",
  // The run queue (docs/trigger.md, "Run queue").
  "OPERATIONAL_QUEUE_URL",
  "BACKFILL_QUEUE_URL",
  "DEAD_LETTER_QUEUE_URL",
  "MAX_CONCURRENT_JOBS",
  "OPERATIONAL_RESERVE",
  "INPUT_WAIT_MINUTES",
  "OPERATIONAL_MAX_WAIT_MINUTES",
  "BACKFILL_MAX_WAIT_MINUTES",
  "RETRY_SECONDS",
  "MAX_RECEIVE_COUNT",
  "ADMISSION_GRACE_SECONDS",
] as const;
export const TRIGGER_OPTIONAL_ENV_NAMES = ["TRANSFORM_AMI_VERSION", "S3_FORCE_PATH_STYLE", "SERVING_MODE", "ASYNC_ENDPOINT_NAME"] as const;
export const TRIGGER_ENV_NAMES = [...TRIGGER_REQUIRED_ENV_NAMES, ...TRIGGER_OPTIONAL_ENV_NAMES] as const;
export type TriggerEnvName = (typeof TRIGGER_ENV_NAMES)[number];

/**
 * The runtime process's C library and V8 settings, set where the process starts (the image's ENV, the
 * local launcher, the test harness): glibc and V8 read them only at start-up.
 * - A fixed mmap threshold of 1 MiB switches off glibc's dynamic threshold, which rises to 32 MiB after
 *   the first large free, so that the runtime's 8-16 MiB buffers (upload parts, file chunks) stayed in
 *   the heap once freed instead of going back to the system: ~100 MB of peak RSS on the full grid.
 * - Semi-spaces of 1 MiB cap each thread's young generation (V8's default grows to 16 MiB per
 *   semi-space in the main thread and each worker). The big data lives outside the JS heap, so this
 *   costs no measurable time; it took ~30 MB off bench:runtime's peak (runtime/README.md, Memory).
 */
export const RUNTIME_PROCESS_ENV = { GLIBC_TUNABLES: "glibc.malloc.mmap_threshold=1048576", NODE_OPTIONS: "--max-semi-space-size=1" } as const;

/** The runtime's variables (the SageMaker model's Environment), by setting. */
export const RUNTIME_ENV = {
  /** The stack's data bucket and prefixes: requests outside them are rejected. Required. */
  dataBucket: "FUXI_DATA_BUCKET",
  inputPrefix: "FUXI_INPUT_PREFIX",
  outputPrefix: "FUXI_OUTPUT_PREFIX",
  modelDir: "FUXI_MODEL_DIR",
  modelS3Uri: "FUXI_MODEL_S3_URI",
  modelCacheDir: "FUXI_MODEL_CACHE_DIR",
  scratchDir: "FUXI_SCRATCH_DIR",
  providers: "FUXI_PROVIDERS",
  allowCpu: "FUXI_ALLOW_CPU",
  keepAllStages: "FUXI_KEEP_ALL_STAGES",
  prefetchNextStage: "FUXI_PREFETCH_NEXT_STAGE",
  intraOpThreads: "FUXI_INTRA_OP_THREADS",
  stepsInFlight: "FUXI_STEPS_IN_FLIGHT",
  encodeThreads: "FUXI_ENCODE_THREADS",
  bitroundBits: "FUXI_BITROUND_BITS",
  instanceType: "FUXI_INSTANCE_TYPE",
  instanceCount: "FUXI_INSTANCE_COUNT",
  logLevel: "LOG_LEVEL",
  port: "SAGEMAKER_BIND_TO_PORT",
  s3ForcePathStyle: "S3_FORCE_PATH_STYLE",
} as const;
export type RuntimeEnvName = (typeof RUNTIME_ENV)[keyof typeof RUNTIME_ENV];
export const RUNTIME_ENV_NAMES: readonly RuntimeEnvName[] = Object.freeze(Object.values(RUNTIME_ENV));
export const RUNTIME_REQUIRED_ENV_NAMES: readonly RuntimeEnvName[] = Object.freeze([RUNTIME_ENV.dataBucket, RUNTIME_ENV.inputPrefix, RUNTIME_ENV.outputPrefix]);
