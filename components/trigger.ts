import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { bundleTriggerHandler } from "../trigger/bundle";
import { MARKER_NAME, type TriggerEnvName } from "../runtime/src/contract";
import type { AwsContext, Tags } from "./context";
import { ESM_MAXIMUM_CONCURRENCY } from "../config";
import { TriggerFunctionRole, type Prefixes } from "./roles";
import { REDRIVE_MAX_RECEIVE_COUNT, RunQueues } from "./runQueues";

export interface TriggerSettings {
  stack: string;
  prefixes: Prefixes;
  jobNamePrefix: string;
  cascadeSteps: number[];
  compression: "none" | "gzip" | "bitround";
  instanceType: string;
  instanceCount: number;
  invocationTimeoutSeconds: number;
  maxRetries: number;
  amiVersion?: string;
  maxConcurrentJobs: number;
  operationalReserve: number;
  inputWaitMinutes: number;
  maxWaitHours: number;
  backfillMaxWaitHours: number;
  retrySeconds: number;
  /** The dispatcher's timeout (admission tickets count this long plus a minute before SageMaker lists their job). */
  functionTimeoutSeconds: number;
  /** serving.mode "async": runs are InvokeEndpointAsync calls on this endpoint instead of transform jobs. */
  asyncEndpointName?: string;
}

export interface QueueUrls {
  operational: string;
  backfill: string;
  deadLetter: string;
}

/** The Lambda's environment, keyed by the names trigger/env.ts reads. */
export function triggerEnvironment(s: TriggerSettings, bucket: string, modelName: string, queues: QueueUrls): Partial<Record<TriggerEnvName, string>> {
  return {
    STACK_NAME: s.stack,
    DATA_BUCKET: bucket,
    INPUT_PREFIX: s.prefixes.input,
    OUTPUT_PREFIX: s.prefixes.output,
    REQUESTS_PREFIX: s.prefixes.requests,
    JOB_NAME_PREFIX: s.jobNamePrefix,
    MODEL_NAME: modelName,
    CASCADE_STEPS: s.cascadeSteps.join(","),
    OUTPUT_COMPRESSION: s.compression,
    TRANSFORM_INSTANCE_TYPE: s.instanceType,
    TRANSFORM_INSTANCE_COUNT: String(s.instanceCount),
    INVOCATION_TIMEOUT_SECONDS: String(s.invocationTimeoutSeconds),
    INVOCATION_MAX_RETRIES: String(s.maxRetries),
    ...(s.amiVersion ? { TRANSFORM_AMI_VERSION: s.amiVersion } : {}),
    OPERATIONAL_QUEUE_URL: queues.operational,
    BACKFILL_QUEUE_URL: queues.backfill,
    DEAD_LETTER_QUEUE_URL: queues.deadLetter,
    MAX_CONCURRENT_JOBS: String(s.maxConcurrentJobs),
    OPERATIONAL_RESERVE: String(s.operationalReserve),
    INPUT_WAIT_MINUTES: String(s.inputWaitMinutes),
    OPERATIONAL_MAX_WAIT_MINUTES: String(s.maxWaitHours * 60),
    BACKFILL_MAX_WAIT_MINUTES: String(s.backfillMaxWaitHours * 60),
    RETRY_SECONDS: String(s.retrySeconds),
    MAX_RECEIVE_COUNT: String(REDRIVE_MAX_RECEIVE_COUNT),
    ADMISSION_GRACE_SECONDS: String(s.functionTimeoutSeconds + 60),
    ...(s.asyncEndpointName ? { SERVING_MODE: "async", ASYNC_ENDPOINT_NAME: s.asyncEndpointName } : {}),
  };
}

export interface TriggerArgs {
  ctx: AwsContext;
  settings: TriggerSettings;
  functionName: string;
  bucketName: pulumi.Input<string>;
  bucketArn: pulumi.Input<string>;
  modelName: pulumi.Input<string>;
  modelArn: pulumi.Input<string>;
  memoryMb: number;
  timeoutSeconds: number;
  reservedConcurrency: number;
  logRetentionDays: number;
  tags: Tags;
}

/**
 * S3 `<input>…/_SUCCESS` → the operational run queue → the dispatcher Lambda (trigger/handler.ts,
 * bundled with esbuild at deploy time; an SQS event source mapping per queue, partial batch
 * failures) → CreateTransformJob under the stack's cap. Backfill runs come through their own queue;
 * runs that cannot start end in the dead-letter queue.
 */
export class Trigger extends pulumi.ComponentResource {
  readonly functionName: pulumi.Output<string>;
  readonly functionArn: pulumi.Output<string>;
  readonly queues: RunQueues;

  constructor(name: string, args: TriggerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fuxi:trigger:Trigger", name, {}, opts);
    const child = { parent: this };
    const logGroup = new aws.cloudwatch.LogGroup(`${name}-logs`, {
      name: `/aws/lambda/${args.functionName}`,
      retentionInDays: args.logRetentionDays,
      tags: args.tags,
    }, child);
    const queues = new RunQueues(`${name}-queues`, {
      ctx: args.ctx,
      namePrefix: args.settings.jobNamePrefix,
      bucketArn: args.bucketArn,
      functionTimeoutSeconds: args.timeoutSeconds,
      tags: args.tags,
    }, child);
    const role = new TriggerFunctionRole(`${name}-role`, {
      ctx: args.ctx,
      bucketName: args.bucketName,
      prefixes: args.settings.prefixes,
      jobNamePrefix: args.settings.jobNamePrefix,
      modelArn: args.modelArn,
      instanceType: args.settings.instanceType,
      logGroupArn: logGroup.arn,
      runQueueArns: [queues.operational.arn, queues.backfill.arn],
      deadLetterQueueArn: queues.deadLetter.arn,
      asyncEndpointName: args.settings.asyncEndpointName,
      tags: args.tags,
    }, child);

    const code = bundleTriggerHandler().then(({ code }) => new pulumi.asset.AssetArchive({ "index.js": new pulumi.asset.StringAsset(code) }));
    const fn = new aws.lambda.Function(`${name}-function`, {
      name: args.functionName,
      description: `Dispatches FuXi runs (s3 ${args.settings.prefixes.input}*/${MARKER_NAME} and backfills) to ${args.settings.asyncEndpointName ? `the async endpoint ${args.settings.asyncEndpointName}` : "Batch Transform"}, at most ${args.settings.maxConcurrentJobs} at a time`,
      runtime: aws.lambda.Runtime.NodeJS22dX,
      handler: "index.handler",
      code,
      role: role.roleArn,
      memorySize: args.memoryMb,
      timeout: args.timeoutSeconds,
      reservedConcurrentExecutions: args.reservedConcurrency,
      loggingConfig: { logFormat: "JSON", logGroup: logGroup.name },
      environment: {
        variables: pulumi
          .all([args.bucketName, args.modelName, queues.operational.url, queues.backfill.url, queues.deadLetter.url])
          .apply(([bucket, modelName, operational, backfill, deadLetter]) =>
            triggerEnvironment(args.settings, bucket, modelName, { operational, backfill, deadLetter }) as Record<string, string>,
          ),
      },
      tags: args.tags,
    }, { parent: this, dependsOn: [logGroup, role.policy] });

    for (const [key, queue] of [["operational", queues.operational], ["backfill", queues.backfill]] as const) {
      new aws.lambda.EventSourceMapping(`${name}-${key}-source`, {
        eventSourceArn: queue.arn,
        functionName: fn.arn,
        batchSize: 10,
        functionResponseTypes: ["ReportBatchItemFailures"],
        scalingConfig: { maximumConcurrency: ESM_MAXIMUM_CONCURRENCY },
        tags: args.tags,
      }, { parent: this, dependsOn: [role.policy] });
    }

    // Replaces the bucket's whole notification configuration (one per bucket).
    new aws.s3.BucketNotification(`${name}-notification`, {
      bucket: args.bucketName,
      queues: [{
        id: `${args.functionName}-input-marker`,
        queueArn: queues.operational.arn,
        events: ["s3:ObjectCreated:*"],
        filterPrefix: args.settings.prefixes.input,
        filterSuffix: MARKER_NAME,
      }],
    }, { parent: this, dependsOn: [queues.operationalPolicy] });

    this.functionName = fn.name;
    this.functionArn = fn.arn;
    this.queues = queues;
    this.registerOutputs({ functionName: this.functionName, functionArn: this.functionArn });
  }
}
