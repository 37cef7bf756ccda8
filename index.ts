/**
 * FuXi on SageMaker: one stack = one data bucket, one runtime image, one model, the run queues
 * (S3 → SQS → dispatcher Lambda, under a cap) with alerts; runs are served by Batch Transform jobs
 * (fuxi:serving.mode "batch", the default) or by an async inference endpoint that scales to zero ("async").
 * Config: config.ts (validated before anything is created). Deploying: docs/deploy.md.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { join } from "node:path";
import { readStackConfig } from "./config";
import { retentionNotes, steadyStateSummary } from "./cost";
import { Alerts } from "./components/alerts";
import { AsyncEndpoint } from "./components/asyncEndpoint";
import type { AwsContext } from "./components/context";
import { checkAdoptedNotifications, DataBucket, NONCURRENT_VERSION_DAYS } from "./components/dataBucket";
import { EndpointScaling } from "./components/endpointScaling";
import { ForecastModel } from "./components/forecastModel";
import { InferenceImage } from "./components/inferenceImage";
import { checkModelArtifacts } from "./components/modelArtifacts";
import { partitionFacts } from "./components/partition";
import { SageMakerExecutionRole } from "./components/roles";
import { Trigger } from "./components/trigger";

async function awsContext(): Promise<AwsContext> {
  const [partition, region, identity] = await Promise.all([aws.getPartition(), aws.getRegion(), aws.getCallerIdentity()]);
  return { partition: partition.partition, region: region.region, accountId: identity.accountId, facts: partitionFacts(partition.partition) };
}

export = async () => {
  const cfg = readStackConfig();
  await checkModelArtifacts(cfg.model);
  const ctx = await awsContext();
  const base = cfg.transform.jobNamePrefix;
  const tags = { ...cfg.tags, "fuxi:stack": cfg.stack, "fuxi:project": pulumi.getProject() };
  const { prefixes } = cfg;
  // Logical names do not contain the job-name prefix, so renaming it never deletes the bucket,
  // the log groups or the alert subscriptions; the alias moves stacks deployed when they did.
  const was = (component: string): pulumi.ComponentResourceOptions => ({ aliases: [{ name: `${base}-${component}` }] });
  if (cfg.dataBucket.existingName !== undefined) {
    await checkAdoptedNotifications(cfg.dataBucket.existingName, `${base}-`, cfg.dataBucket.replaceNotifications);
  }

  // Known before the endpoint exists: the dispatcher (created first) may invoke only this endpoint.
  const asyncEndpointName = `${base}-async`;
  const data = new DataBucket("data", {
    ctx,
    existingName: cfg.dataBucket.existingName,
    namePrefix: base,
    forceDestroy: cfg.dataBucket.forceDestroy,
    protect: cfg.dataBucket.protect,
    retainOnDelete: cfg.dataBucket.retainOnDelete,
    requestsPrefix: prefixes.requests,
    requestExpiryDays: cfg.dataBucket.requestExpiryDays,
    outputPrefix: prefixes.output,
    outputRetention: cfg.dataBucket.outputRetention,
    abortMultipartAfterDays: cfg.dataBucket.abortMultipartAfterDays,
    tags,
  }, was("data"));

  const image = new InferenceImage("runtime", {
    repositoryName: `${base}-runtime`,
    context: join(__dirname, cfg.image.context),
    dockerfile: cfg.image.dockerfile,
    platform: cfg.image.platform,
    baseImage: cfg.image.baseImage,
    keepImages: cfg.image.keepImages,
    forceDelete: cfg.image.forceDelete,
    tags,
  }, was("runtime"));

  const sageMakerRole = new SageMakerExecutionRole("sagemaker", {
    ctx,
    bucketName: data.bucketName,
    prefixes,
    model: cfg.model,
    repositoryArn: image.repositoryArn,
    jobNamePrefix: base,
    tags,
  }, was("sagemaker"));

  const model = new ForecastModel("model", {
    namePrefix: base,
    imageUri: image.imageUri,
    executionRoleArn: sageMakerRole.roleArn,
    bucketName: data.bucketName,
    prefixes,
    model: cfg.model,
    runtime: cfg.runtime,
    instance: { instanceType: cfg.transform.instanceType, instanceCount: cfg.transform.instanceCount },
    tags,
  }, { dependsOn: [sageMakerRole], ...was("model") });

  const trigger = new Trigger("trigger", {
    ctx,
    settings: {
      stack: cfg.stack,
      prefixes,
      jobNamePrefix: base,
      cascadeSteps: cfg.forecast.cascadeSteps,
      compression: cfg.forecast.compression,
      instanceType: cfg.transform.instanceType,
      instanceCount: cfg.transform.instanceCount,
      invocationTimeoutSeconds: cfg.transform.invocationTimeoutSeconds,
      maxRetries: cfg.transform.maxRetries,
      amiVersion: cfg.transform.amiVersion,
      maxConcurrentJobs: cfg.transform.maxConcurrentJobs,
      operationalReserve: cfg.queue.operationalReserve,
      inputWaitMinutes: cfg.trigger.inputWaitMinutes,
      maxWaitHours: cfg.queue.maxWaitHours,
      backfillMaxWaitHours: cfg.queue.backfillMaxWaitHours,
      retrySeconds: cfg.queue.retrySeconds,
      functionTimeoutSeconds: cfg.lambda.timeoutSeconds,
      ...(cfg.serving.mode === "async" ? { asyncEndpointName } : {}),
    },
    functionName: `${base}-trigger`,
    bucketName: data.bucketName,
    bucketArn: data.bucketArn,
    modelName: model.modelName,
    modelArn: model.modelArn,
    memoryMb: cfg.lambda.memoryMb,
    timeoutSeconds: cfg.lambda.timeoutSeconds,
    reservedConcurrency: cfg.lambda.reservedConcurrency,
    logRetentionDays: cfg.lambda.logRetentionDays,
    tags,
  }, was("trigger"));

  const alertsAreSecret = cfg.secretKeys.includes("alerts");
  const alerts = new Alerts("alerts", {
    ctx,
    namePrefix: base,
    jobNamePrefix: base,
    functionName: trigger.functionName,
    stack: cfg.stack,
    operationalQueueName: trigger.queues.operational.name,
    deadLetterQueueName: trigger.queues.deadLetter.name,
    oldestRunAlarmMinutes: cfg.queue.oldestRunAlarmMinutes,
    emails: cfg.alerts.emails.map((e) => (alertsAreSecret ? pulumi.secret(e) : e)),
    tags,
  }, was("alerts"));

  // serving.mode "async": the same model behind an async inference endpoint (docs/serving.md).
  let asyncServing: AsyncEndpoint | undefined;
  if (cfg.serving.mode === "async") {
    asyncServing = new AsyncEndpoint("async", {
      ctx,
      endpointName: asyncEndpointName,
      executionRoleName: sageMakerRole.roleName,
      modelName: model.modelName,
      instanceType: cfg.transform.instanceType,
      bucketName: data.bucketName,
      outputPrefix: prefixes.output,
      alertTopicArn: alerts.topicArn,
      topicKeyArn: alerts.keyArn,
      volumeKmsKeyArn: cfg.serving.volumeKmsKeyArn,
      tags,
    });
    new EndpointScaling("async-scaling", {
      endpointName: asyncServing.endpointName,
      variantName: asyncServing.variantName,
      maxInstances: cfg.serving.maxInstances,
      scaleInCooldownMinutes: cfg.serving.scaleInCooldownMinutes,
      warmWindows: cfg.serving.warmWindows,
      namePrefix: base,
      tags,
    });
  }

  // What the cadence keeps in the bucket and what it costs (cost.ts; docs/cost.md).
  const storage = {
    runsPerDay: cfg.forecast.runsPerDay,
    steps: cfg.forecast.cascadeSteps.reduce((a, b) => a + b, 0),
    compression: cfg.forecast.compression,
    retention: cfg.dataBucket.outputRetention,
    noncurrentDays: NONCURRENT_VERSION_DAYS,
  };
  for (const note of retentionNotes(storage.retention)) pulumi.log.warn(`fuxi:dataBucket.outputRetention: ${note}`);

  const inputUri = pulumi.interpolate`s3://${data.bucketName}/${prefixes.input}`;
  return {
    dataBucket: data.bucketName,
    inputUri,
    outputUri: pulumi.interpolate`s3://${data.bucketName}/${prefixes.output}`,
    imageUri: image.imageUri,
    modelName: model.modelName,
    functionName: trigger.functionName,
    /** Read by `npm run runs` and `npm run campaign` (`pulumi stack output --json`). */
    jobNamePrefix: base,
    inputPrefix: prefixes.input,
    outputPrefix: prefixes.output,
    requestsPrefix: prefixes.requests,
    operationalQueueUrl: trigger.queues.operational.url,
    backfillQueueUrl: trigger.queues.backfill.url,
    deadLetterQueueUrl: trigger.queues.deadLetter.url,
    alertTopicArn: alerts.topicArn,
    ...(asyncServing ? {
      servingMode: cfg.serving.mode,
      asyncEndpointName: asyncServing.endpointName,
      asyncResultsUri: asyncServing.resultsUri,
      asyncFailuresUri: asyncServing.failuresUri,
      asyncCompletionsTopicArn: asyncServing.completionsTopicArn,
    } : {}),
    steadyStateStorage: steadyStateSummary(storage, cfg.cost, {
      instanceType: cfg.transform.instanceType,
      instanceCount: cfg.transform.instanceCount,
      invocationTimeoutSeconds: cfg.transform.invocationTimeoutSeconds,
      ...(cfg.serving.mode === "async" ? { serving: { warmWindows: cfg.serving.warmWindows, scaleInCooldownMinutes: cfg.serving.scaleInCooldownMinutes } } : {}),
    }),
    /** What `npm run runs` and `npm run campaign` price runs with (prices: null until fuxi:cost is set). */
    costModel: {
      prices: cfg.cost ?? null,
      instanceType: cfg.transform.instanceType,
      instanceCount: cfg.transform.instanceCount,
      invocationTimeoutSeconds: cfg.transform.invocationTimeoutSeconds,
      ...storage,
      retention: storage.retention ?? null,
    },
    /** Start a run: upload the input, then the marker (RUN_ID e.g. 2023101206). */
    startRunCommands: [
      pulumi.interpolate`aws s3 cp ./fuxi_input.nc "${inputUri}$RUN_ID/fuxi_input.nc" --region ${ctx.region}`,
      pulumi.interpolate`echo -n | aws s3 cp - "${inputUri}$RUN_ID/_SUCCESS" --region ${ctx.region}`,
    ],
  };
};
