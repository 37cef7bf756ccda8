import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { asyncFailuresKey, asyncResultsKey, formatS3Uri } from "../runtime/src/contract";
import type { AwsContext, Tags } from "./context";
import { asyncEndpointExecutionPolicy, tlsOnlyPolicy } from "./roles";

/** The endpoint's one production variant (the autoscaling resource id names it). */
export const ASYNC_VARIANT_NAME = "forecast";
/**
 * ProductionVariant.ContainerStartupHealthCheckTimeoutInSeconds and ModelDataDownloadTimeoutInSeconds
 * (each 60-3600): the runtime downloads about 8 GB of weights and loads a stage before /ping turns
 * healthy, well beyond the default startup window.
 */
export const ASYNC_STARTUP_TIMEOUT_SECONDS = 1800;

export interface AsyncEndpointArgs {
  ctx: AwsContext;
  /** The model's execution role: the endpoint's own grants are added to it (asyncEndpointExecutionPolicy). */
  executionRoleName: pulumi.Input<string>;
  /** The endpoint's name (`<jobNamePrefix>-async`): the dispatcher's IAM grant and the log group name follow it. */
  endpointName: string;
  /** The same SageMaker model (image digest, environment) that Batch Transform runs. */
  modelName: pulumi.Input<string>;
  instanceType: string;
  bucketName: pulumi.Input<string>;
  outputPrefix: string;
  /** The stack's alert topic: failed invocations are published there (and e-mailed). */
  alertTopicArn: pulumi.Input<string>;
  /** KMS key of the alert topic; also encrypts the completions topic. */
  topicKeyArn: pulumi.Input<string>;
  /** KMS key of the ML storage volume (instance types without instance storage only). */
  volumeKmsKeyArn?: string;
  tags: Tags;
}

/**
 * A SageMaker asynchronous inference endpoint on the forecast model: requests wait in the endpoint's
 * own queue, one invocation per instance at a time; each response (the run manifest) lands in
 * `<outputPrefix>_async/results/`, each failure in `<outputPrefix>_async/failures/`. Failures are
 * published to the stack's alerts; completions to a topic of their own (not e-mailed: four a day).
 */
export class AsyncEndpoint extends pulumi.ComponentResource {
  readonly endpointName: pulumi.Output<string>;
  readonly endpointArn: pulumi.Output<string>;
  readonly variantName: string;
  readonly completionsTopicArn: pulumi.Output<string>;
  readonly resultsUri: pulumi.Output<string>;
  readonly failuresUri: pulumi.Output<string>;

  constructor(name: string, args: AsyncEndpointArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fuxi:serving:AsyncEndpoint", name, {}, opts);
    const child = { parent: this };

    const completions = new aws.sns.Topic(`${name}-completions`, { kmsMasterKeyId: args.topicKeyArn, tags: args.tags }, child);
    new aws.sns.TopicPolicy(`${name}-completions-policy`, {
      arn: completions.arn,
      policy: completions.arn.apply((arn) => JSON.stringify(tlsOnlyPolicy("sns:Publish", arn))),
    }, child);

    const resultsUri = pulumi.output(args.bucketName).apply((bucket) => formatS3Uri({ bucket, key: asyncResultsKey(args.outputPrefix) }));
    const failuresUri = pulumi.output(args.bucketName).apply((bucket) => formatS3Uri({ bucket, key: asyncFailuresKey(args.outputPrefix) }));

    // Autonamed: an endpoint configuration is immutable, so a change creates a new one and the
    // endpoint moves to it in place before the old one is deleted.
    const config = new aws.sagemaker.EndpointConfiguration(`${name}-config`, {
      productionVariants: [{
        variantName: ASYNC_VARIANT_NAME,
        modelName: args.modelName,
        instanceType: args.instanceType,
        // CreateEndpoint starts with one instance; the scaling policies take it to zero when idle.
        initialInstanceCount: 1,
        containerStartupHealthCheckTimeoutInSeconds: ASYNC_STARTUP_TIMEOUT_SECONDS,
        modelDataDownloadTimeoutInSeconds: ASYNC_STARTUP_TIMEOUT_SECONDS,
      }],
      ...(args.volumeKmsKeyArn ? { kmsKeyArn: args.volumeKmsKeyArn } : {}),
      asyncInferenceConfig: {
        // A forecast holds the GPU for its whole cascade: never two on one instance.
        clientConfig: { maxConcurrentInvocationsPerInstance: 1 },
        outputConfig: {
          s3OutputPath: resultsUri,
          s3FailurePath: failuresUri,
          notificationConfig: {
            errorTopic: args.alertTopicArn,
            successTopic: completions.arn,
            includeInferenceResponseIns: ["ERROR_NOTIFICATION_TOPIC", "SUCCESS_NOTIFICATION_TOPIC"],
          },
        },
      },
      tags: args.tags,
    }, child);

    const grants = new aws.iam.RolePolicy(`${name}-execution`, {
      role: args.executionRoleName,
      policy: pulumi.all([args.alertTopicArn, completions.arn, args.topicKeyArn]).apply(([alertTopicArn, completionsArn, topicKeyArn]) =>
        JSON.stringify(asyncEndpointExecutionPolicy({ ctx: args.ctx, endpointName: args.endpointName, topicArns: [alertTopicArn, completionsArn], topicKeyArn })),
      ),
    }, child);

    const endpoint = new aws.sagemaker.Endpoint(`${name}-endpoint`, {
      name: args.endpointName,
      endpointConfigName: config.name,
      tags: args.tags,
    }, { parent: this, dependsOn: [grants] });

    this.endpointName = endpoint.name;
    this.endpointArn = endpoint.arn;
    this.variantName = ASYNC_VARIANT_NAME;
    this.completionsTopicArn = completions.arn;
    this.resultsUri = resultsUri;
    this.failuresUri = failuresUri;
    this.registerOutputs({ endpointName: this.endpointName, endpointArn: this.endpointArn, completionsTopicArn: this.completionsTopicArn, resultsUri, failuresUri });
  }
}
