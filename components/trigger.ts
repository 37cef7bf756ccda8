import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { bundleTriggerHandler } from "../trigger/bundle";
import { MARKER_NAME, type TriggerEnvName } from "../runtime/src/contract";
import type { AwsContext, Tags } from "./context";
import { tlsOnlyPolicy, TriggerFunctionRole, type Prefixes } from "./roles";

export interface TriggerSettings {
  stack: string;
  prefixes: Prefixes;
  jobNamePrefix: string;
  cascadeSteps: number[];
  compression: "none" | "gzip";
  instanceType: string;
  instanceCount: number;
  invocationTimeoutSeconds: number;
  maxRetries: number;
  amiVersion?: string;
}

/** The Lambda's environment, keyed by the names trigger/env.ts reads. */
export function triggerEnvironment(s: TriggerSettings, bucket: string, modelName: string): Partial<Record<TriggerEnvName, string>> {
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
 * S3 `<input>…/_SUCCESS` → the trigger Lambda (trigger/handler.ts, bundled with
 * esbuild at deploy time) → CreateTransformJob. Failed async invocations go to an
 * SQS queue after Lambda's own retries.
 */
export class Trigger extends pulumi.ComponentResource {
  readonly functionName: pulumi.Output<string>;
  readonly functionArn: pulumi.Output<string>;
  readonly failureQueueName: pulumi.Output<string>;
  readonly failureQueueArn: pulumi.Output<string>;

  constructor(name: string, args: TriggerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fuxi:trigger:Trigger", name, {}, opts);
    const child = { parent: this };
    const logGroup = new aws.cloudwatch.LogGroup(`${name}-logs`, {
      name: `/aws/lambda/${args.functionName}`,
      retentionInDays: args.logRetentionDays,
      tags: args.tags,
    }, child);
    const failureQueue = new aws.sqs.Queue(`${name}-failures`, {
      name: `${args.functionName}-failures`,
      sqsManagedSseEnabled: true,
      messageRetentionSeconds: 14 * 24 * 3600,
      tags: args.tags,
    }, child);
    new aws.sqs.QueuePolicy(`${name}-failures-tls-only`, {
      queueUrl: failureQueue.url,
      policy: pulumi.jsonStringify(tlsOnlyPolicy("sqs:*", failureQueue.arn)),
    }, child);
    const role = new TriggerFunctionRole(`${name}-role`, {
      ctx: args.ctx,
      bucketName: args.bucketName,
      prefixes: args.settings.prefixes,
      jobNamePrefix: args.settings.jobNamePrefix,
      modelArn: args.modelArn,
      instanceType: args.settings.instanceType,
      logGroupArn: logGroup.arn,
      failureQueueArn: failureQueue.arn,
      tags: args.tags,
    }, child);

    const code = bundleTriggerHandler().then(({ code }) => new pulumi.asset.AssetArchive({ "index.js": new pulumi.asset.StringAsset(code) }));
    const fn = new aws.lambda.Function(`${name}-function`, {
      name: args.functionName,
      description: `Starts FuXi Batch Transform jobs for s3 ${args.settings.prefixes.input}*/${MARKER_NAME}`,
      runtime: aws.lambda.Runtime.NodeJS22dX,
      handler: "index.handler",
      code,
      role: role.roleArn,
      memorySize: args.memoryMb,
      timeout: args.timeoutSeconds,
      reservedConcurrentExecutions: args.reservedConcurrency,
      loggingConfig: { logFormat: "JSON", logGroup: logGroup.name },
      environment: {
        variables: pulumi.all([args.bucketName, args.modelName]).apply(([bucket, modelName]) =>
          triggerEnvironment(args.settings, bucket, modelName) as Record<string, string>,
        ),
      },
      tags: args.tags,
    }, { parent: this, dependsOn: [logGroup, role.policy] });

    new aws.lambda.FunctionEventInvokeConfig(`${name}-async`, {
      functionName: fn.name,
      maximumRetryAttempts: 2,
      maximumEventAgeInSeconds: 6 * 3600,
      destinationConfig: { onFailure: { destination: failureQueue.arn } },
    }, child);

    const permission = new aws.lambda.Permission(`${name}-s3-invoke`, {
      action: "lambda:InvokeFunction",
      function: fn.name,
      principal: args.ctx.facts.principals.s3,
      sourceArn: args.bucketArn,
      sourceAccount: args.ctx.accountId,
    }, child);

    // Replaces the bucket's whole notification configuration (one per bucket).
    new aws.s3.BucketNotification(`${name}-notification`, {
      bucket: args.bucketName,
      lambdaFunctions: [{
        id: `${args.functionName}-input-marker`,
        lambdaFunctionArn: fn.arn,
        events: ["s3:ObjectCreated:*"],
        filterPrefix: args.settings.prefixes.input,
        filterSuffix: MARKER_NAME,
      }],
    }, { parent: this, dependsOn: [permission] });

    this.functionName = fn.name;
    this.functionArn = fn.arn;
    this.failureQueueName = failureQueue.name;
    this.failureQueueArn = failureQueue.arn;
    this.registerOutputs({ functionName: this.functionName, functionArn: this.functionArn, failureQueueArn: this.failureQueueArn });
  }
}
