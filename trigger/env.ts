// zod/mini rather than classic zod: it tree-shakes, keeping the Lambda bundle small.
import * as z from "zod/mini";
import {
  BUCKET_NAME_PATTERN,
  cascadeStepsFault,
  COMPRESSIONS,
  isKeyPrefix,
  JOB_NAME_PREFIX_MAX_LENGTH,
  JOB_NAME_PREFIX_PATTERN,
  prefixesOverlap,
  SAGEMAKER_NAME_PATTERN,
  TRIGGER_ENV_NAMES,
} from "../runtime/src/contract";


export interface TriggerConfig {
  stackName: string;
  dataBucket: string;
  inputPrefix: string;
  outputPrefix: string;
  requestsPrefix: string;
  jobNamePrefix: string;
  modelName: string;
  cascadeSteps: number[];
  outputCompression: "none" | "gzip" | "bitround";
  instanceType: string;
  instanceCount: number;
  invocationTimeoutSeconds: number;
  invocationMaxRetries: number;
  transformAmiVersion?: string;
  /** How runs are served: transform jobs, or invocations of the async endpoint (docs/serving.md); absent: batch. */
  serving?: { mode: "batch" } | { mode: "async"; endpointName: string };
  s3ForcePathStyle: boolean;
  queues: { operational: string; backfill: string; deadLetter: string };
  /** InProgress jobs of this stack never exceed this. */
  maxConcurrentJobs: number;
  /** Slots backfill runs leave free for marker-driven runs (at most maxConcurrentJobs - 1 take effect). */
  operationalReserve: number;
  inputWaitMinutes: number;
  maxWaitMinutes: { operational: number; backfill: number };
  /** Shortest re-check interval of a waiting run. */
  retrySeconds: number;
  /** The queues' redrive maxReceiveCount: waits are spread so it is never reached before the maximum wait. */
  maxReceiveCount: number;
  /** How long a fresh admission ticket counts although SageMaker does not list its job yet. */
  admissionGraceSeconds: number;
}

const required = (name: string) =>
  z.string({ error: (issue) => (issue.input === undefined ? `${name} is not set` : `${name} must be a string`) });

const matching = (name: string, pattern: RegExp, message: string) => required(name).check(z.regex(pattern, message));

const QUEUE_URL_PATTERN = /^https?:\/\/[^/\s]+\/\d{12}\/[A-Za-z0-9_-]{1,80}$/;

const queueUrl = (name: string) => matching(name, QUEUE_URL_PATTERN, `${name} must be an SQS queue URL such as https://sqs.cn-northwest-1.amazonaws.com.cn/123456789012/fuxi-dev-runs`);

const prefix = (name: string) =>
  required(name).check(z.refine(isKeyPrefix, `${name} must be empty or end with "/" (and not start with "/")`));

const integer = (name: string, min: number, max: number) => {
  const message = `${name} must be a whole number from ${min} to ${max}`;
  return z.pipe(
    matching(name, /^\d+$/, message),
    z.transform(Number).check(z.refine((n: number) => n >= min && n <= max, message)),
  );
};

const cascadeSteps = z.pipe(
  matching("CASCADE_STEPS", /^\d+(,\d+)*$/, 'CASCADE_STEPS must be 1 to 3 comma-separated whole numbers, e.g. "20,20,20"'),
  z.transform((text: string) => text.split(",").map(Number)).check(
    z.superRefine((steps: number[], ctx) => {
      const fault = cascadeStepsFault(steps);
      if (fault) ctx.issues.push({ code: "custom", message: `CASCADE_STEPS${fault.at === undefined ? "" : ` entry ${fault.at + 1}`} ${fault.fault}`, input: steps });
    }),
  ),
);

const schema = z.object({
    STACK_NAME: matching(
      "STACK_NAME",
      /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,256}$/u,
      "STACK_NAME must be 1-256 characters valid in an AWS tag value",
    ),
    DATA_BUCKET: matching(
      "DATA_BUCKET",
      BUCKET_NAME_PATTERN,
      "DATA_BUCKET must be an S3 bucket name (3-63 of a-z 0-9 . -)",
    ),
    INPUT_PREFIX: prefix("INPUT_PREFIX"),
    OUTPUT_PREFIX: prefix("OUTPUT_PREFIX"),
    REQUESTS_PREFIX: prefix("REQUESTS_PREFIX"),
    JOB_NAME_PREFIX: matching(
      "JOB_NAME_PREFIX",
      JOB_NAME_PREFIX_PATTERN,
      `JOB_NAME_PREFIX must be 1-${JOB_NAME_PREFIX_MAX_LENGTH} of a-z A-Z 0-9 -, starting with a letter or digit`,
    ),
    MODEL_NAME: matching("MODEL_NAME", SAGEMAKER_NAME_PATTERN, "MODEL_NAME must be a SageMaker model name"),
    CASCADE_STEPS: cascadeSteps,
    OUTPUT_COMPRESSION: z.enum(COMPRESSIONS, {
      error: (issue) => (issue.input === undefined ? "OUTPUT_COMPRESSION is not set" : `OUTPUT_COMPRESSION must be one of ${COMPRESSIONS.map((c) => JSON.stringify(c)).join(", ")}`),
    }),
    TRANSFORM_INSTANCE_TYPE: matching(
      "TRANSFORM_INSTANCE_TYPE",
      /^ml\.[a-z0-9]+\.[a-z0-9]+$/,
      'TRANSFORM_INSTANCE_TYPE must be a SageMaker instance type such as "ml.g4dn.xlarge"',
    ),
    TRANSFORM_INSTANCE_COUNT: integer("TRANSFORM_INSTANCE_COUNT", 1, 100),
    INVOCATION_TIMEOUT_SECONDS: integer("INVOCATION_TIMEOUT_SECONDS", 1, 3600),
    INVOCATION_MAX_RETRIES: integer("INVOCATION_MAX_RETRIES", 0, 3),
    // Empty counts as unset: infrastructure code often writes "" for "no value".
    TRANSFORM_AMI_VERSION: z.optional(
      matching("TRANSFORM_AMI_VERSION", /^$|^[a-z0-9][a-z0-9-]{0,62}$/, 'TRANSFORM_AMI_VERSION must look like "al2-ami-sagemaker-batch-gpu-535"'),
    ),
    OPERATIONAL_QUEUE_URL: queueUrl("OPERATIONAL_QUEUE_URL"),
    BACKFILL_QUEUE_URL: queueUrl("BACKFILL_QUEUE_URL"),
    DEAD_LETTER_QUEUE_URL: queueUrl("DEAD_LETTER_QUEUE_URL"),
    MAX_CONCURRENT_JOBS: integer("MAX_CONCURRENT_JOBS", 1, 100),
    OPERATIONAL_RESERVE: integer("OPERATIONAL_RESERVE", 0, 100),
    INPUT_WAIT_MINUTES: integer("INPUT_WAIT_MINUTES", 0, 1440),
    OPERATIONAL_MAX_WAIT_MINUTES: integer("OPERATIONAL_MAX_WAIT_MINUTES", 1, 20160),
    BACKFILL_MAX_WAIT_MINUTES: integer("BACKFILL_MAX_WAIT_MINUTES", 1, 20160),
    RETRY_SECONDS: integer("RETRY_SECONDS", 1, 43200),
    MAX_RECEIVE_COUNT: integer("MAX_RECEIVE_COUNT", 10, 1000),
    ADMISSION_GRACE_SECONDS: integer("ADMISSION_GRACE_SECONDS", 1, 3600),
    S3_FORCE_PATH_STYLE: z.optional(
      z.enum(["", "true", "false"], { error: () => 'S3_FORCE_PATH_STYLE must be "true" or "false" when set' }),
    ),
    SERVING_MODE: z.optional(z.enum(["", "batch", "async"], { error: () => 'SERVING_MODE must be "batch" or "async" when set' })),
    ASYNC_ENDPOINT_NAME: z.optional(matching("ASYNC_ENDPOINT_NAME", SAGEMAKER_NAME_PATTERN, "ASYNC_ENDPOINT_NAME must be a SageMaker endpoint name")),
  });

/** Checked apart from the schema so that it is reported together with faults in other variables. */
function prefixOverlapFault(env: Record<string, string | undefined>): string | null {
  const [a, b] = [env.INPUT_PREFIX, env.OUTPUT_PREFIX];
  if (a === undefined || b === undefined || !isKeyPrefix(a) || !isKeyPrefix(b)) return null;
  if (!prefixesOverlap(a, b)) return null;
  return `INPUT_PREFIX "${a}" and OUTPUT_PREFIX "${b}" overlap: runtime output could trigger new jobs`;
}

export class TriggerEnvError extends Error {
  constructor(readonly faults: string[]) {
    super(`invalid trigger Lambda environment: ${faults.join("; ")}`);
    this.name = "TriggerEnvError";
  }
}

/** Validates every variable at once; the error names each bad one. */
export function readTriggerEnv(env: Record<string, string | undefined>): TriggerConfig {
  const picked = Object.fromEntries(TRIGGER_ENV_NAMES.map((name) => [name, env[name]]));
  const parsed = schema.safeParse(picked);
  const faults = parsed.success ? [] : parsed.error.issues.map((issue) => issue.message);
  const overlap = prefixOverlapFault(picked);
  if (overlap) faults.push(overlap);
  if (picked.SERVING_MODE === "async" && !picked.ASYNC_ENDPOINT_NAME) faults.push('ASYNC_ENDPOINT_NAME is not set; SERVING_MODE "async" needs the endpoint to invoke');
  if (!parsed.success || faults.length > 0) throw new TriggerEnvError(faults);
  const v = parsed.data;
  return {
    stackName: v.STACK_NAME,
    dataBucket: v.DATA_BUCKET,
    inputPrefix: v.INPUT_PREFIX,
    outputPrefix: v.OUTPUT_PREFIX,
    requestsPrefix: v.REQUESTS_PREFIX,
    jobNamePrefix: v.JOB_NAME_PREFIX,
    modelName: v.MODEL_NAME,
    cascadeSteps: v.CASCADE_STEPS,
    outputCompression: v.OUTPUT_COMPRESSION,
    instanceType: v.TRANSFORM_INSTANCE_TYPE,
    instanceCount: v.TRANSFORM_INSTANCE_COUNT,
    invocationTimeoutSeconds: v.INVOCATION_TIMEOUT_SECONDS,
    invocationMaxRetries: v.INVOCATION_MAX_RETRIES,
    ...(v.TRANSFORM_AMI_VERSION ? { transformAmiVersion: v.TRANSFORM_AMI_VERSION } : {}),
    s3ForcePathStyle: v.S3_FORCE_PATH_STYLE === "true",
    ...(v.SERVING_MODE === "async" ? { serving: { mode: "async" as const, endpointName: v.ASYNC_ENDPOINT_NAME! } } : {}),
    queues: { operational: v.OPERATIONAL_QUEUE_URL, backfill: v.BACKFILL_QUEUE_URL, deadLetter: v.DEAD_LETTER_QUEUE_URL },
    maxConcurrentJobs: v.MAX_CONCURRENT_JOBS,
    operationalReserve: v.OPERATIONAL_RESERVE,
    inputWaitMinutes: v.INPUT_WAIT_MINUTES,
    maxWaitMinutes: { operational: v.OPERATIONAL_MAX_WAIT_MINUTES, backfill: v.BACKFILL_MAX_WAIT_MINUTES },
    retrySeconds: v.RETRY_SECONDS,
    maxReceiveCount: v.MAX_RECEIVE_COUNT,
    admissionGraceSeconds: v.ADMISSION_GRACE_SECONDS,
  };
}
