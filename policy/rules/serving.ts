import * as aws from "@pulumi/aws";
import { validateResourceOfType, type PolicyResource, type ResourceValidationPolicy, type StackValidationPolicy } from "@pulumi/policy";
import { label, ofType } from "../lib/links";
import { T } from "../lib/types";
import { asArray, isSet, knownString } from "../lib/values";

/**
 * Rules for the async serving mode (fuxi:serving.mode "async"): the endpoint configuration, where it
 * writes, and the autoscaling that sizes it. Batch stacks have none of these resources.
 */

export interface VolumeEncryptionConfig {
  instanceStoreFamilies: string[];
}
/**
 * Families whose ML storage is NVMe instance storage, encrypted by a hardware module; SageMaker rejects
 * a KmsKeyId for them (CreateEndpointConfig, KmsKeyId).
 */
export const VOLUME_ENCRYPTION_DEFAULTS: VolumeEncryptionConfig = { instanceStoreFamilies: ["ml.g4dn", "ml.g5", "ml.g6", "ml.g6e", "ml.p3dn", "ml.p4d", "ml.p5"] };

export const sagemakerEndpointVolumeEncrypted: ResourceValidationPolicy = {
  name: "sagemaker-endpoint-volume-encrypted",
  description: "Endpoint configurations encrypt the instances' ML storage: a KMS key (kmsKeyArn), or instance types whose NVMe instance storage is encrypted in hardware.",
  enforcementLevel: "mandatory",
  severity: "high",
  configSchema: {
    properties: {
      instanceStoreFamilies: {
        type: "array",
        items: { type: "string", pattern: "^ml\\.[a-z0-9]+$" },
        default: VOLUME_ENCRYPTION_DEFAULTS.instanceStoreFamilies,
        description: "Instance families with hardware-encrypted NVMe instance storage.",
      },
    },
  },
  remediationSteps: "Set fuxi:serving.volumeKmsKeyArn for an instance type without instance storage (ml.p3.*), or use an ml.g4dn/g5/g6 type.",
  validateResource: validateResourceOfType(aws.sagemaker.EndpointConfiguration, (config, args, report) => {
    if (isSet(() => config.kmsKeyArn)) return;
    const { instanceStoreFamilies } = { ...VOLUME_ENCRYPTION_DEFAULTS, ...args.getConfig<Partial<VolumeEncryptionConfig>>() };
    for (const [i, variant] of asArray(config.productionVariants).entries()) {
      if (variant.serverlessConfig) continue; // serverless variants have no instance storage of their own
      const type = knownString(() => variant.instanceType);
      if (type === undefined) continue;
      if (!instanceStoreFamilies.some((f) => type.startsWith(`${f}.`))) {
        report(`${label(args)} productionVariants[${i}] runs on ${type}, which has no instance storage, and the configuration sets no kmsKeyArn: its ML storage volume is not encrypted with a key of the stack`);
      }
    }
  }),
};

export const sagemakerAsyncFailuresAlert: ResourceValidationPolicy = {
  name: "sagemaker-async-failures-alert",
  description: "Async endpoint configurations keep a failure path, publish failed invocations to a topic, and send one invocation per instance at a time.",
  enforcementLevel: "mandatory",
  severity: "medium",
  remediationSteps: "Set asyncInferenceConfig.outputConfig.s3FailurePath and notificationConfig.errorTopic (the stack's alert topic), and clientConfig.maxConcurrentInvocationsPerInstance 1.",
  validateResource: validateResourceOfType(aws.sagemaker.EndpointConfiguration, (config, args, report) => {
    const asyncConfig = config.asyncInferenceConfig;
    if (!asyncConfig) return args.notApplicable("not an async endpoint configuration");
    if (!isSet(() => asyncConfig.outputConfig?.s3FailurePath)) report(`${label(args)} has no s3FailurePath: a failed forecast's error would be written next to the results`);
    if (!isSet(() => asyncConfig.outputConfig?.notificationConfig?.errorTopic)) report(`${label(args)} publishes failed invocations to no topic (notificationConfig.errorTopic): a failed forecast would raise no alert`);
    const perInstance = asyncConfig.clientConfig?.maxConcurrentInvocationsPerInstance;
    if (perInstance !== 1) report(`${label(args)} sends ${perInstance === undefined ? "as many invocations as SageMaker chooses" : perInstance} to an instance at a time (clientConfig.maxConcurrentInvocationsPerInstance); expected 1 (a forecast holds the GPU for its whole cascade)`);
  }),
};

/** The runtime's lanes, from the model's environment (docs/contract.md, "Runtime environment"). */
function modelLanes(model: PolicyResource): { bucket: string; outputPrefix: string } | undefined {
  const env = (model.props.primaryContainer as { environment?: Record<string, string> } | undefined)?.environment;
  const bucket = knownString(() => env?.FUXI_DATA_BUCKET), outputPrefix = knownString(() => env?.FUXI_OUTPUT_PREFIX);
  return typeof bucket === "string" && typeof outputPrefix === "string" ? { bucket, outputPrefix } : undefined;
}

export const sagemakerAsyncOutputInDataBucket: StackValidationPolicy = {
  name: "sagemaker-async-output-in-data-bucket",
  description: "An async endpoint writes its results and failures inside the data bucket's output prefix (the lifecycle, encryption and access rules of the forecasts cover them), never under the input or requests prefixes.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps: "Point asyncInferenceConfig.outputConfig.s3OutputPath and s3FailurePath at s3://<data bucket>/<output prefix>_async/…",
  validateStack: (args, report) => {
    const models = ofType(args.resources, T.sagemakerModel);
    for (const config of ofType(args.resources, T.sagemakerEndpointConfiguration)) {
      const output = (config.props.asyncInferenceConfig as { outputConfig?: Record<string, unknown> } | undefined)?.outputConfig;
      if (output === undefined) continue;
      const variants = asArray(config.props.productionVariants as { modelName?: string }[] | undefined);
      const linked = models.filter((m) => (config.propertyDependencies.productionVariants ?? []).some((d) => d.urn === m.urn));
      for (const variant of variants) {
        const model = models.find((m) => knownString(() => m.props.name) === knownString(() => variant.modelName)) ?? (variants.length === 1 && linked.length === 1 ? linked[0] : undefined);
        const lanes = model && modelLanes(model);
        if (!lanes) {
          report(`${label(config)} serves model ${JSON.stringify(variant.modelName)}, which is not a model of this stack with the runtime's lanes (FUXI_DATA_BUCKET, FUXI_OUTPUT_PREFIX)`, config.urn);
          continue;
        }
        const inside = `s3://${lanes.bucket}/${lanes.outputPrefix}`;
        for (const key of ["s3OutputPath", "s3FailurePath"]) {
          const path = knownString(() => output[key]);
          if (path === undefined) continue; // sagemaker-async-failures-alert reports a missing failure path
          if (typeof path !== "string" || !path.startsWith(inside) || path.length === inside.length) {
            report(`${label(config)} ${key} ${JSON.stringify(path)} is not inside the output prefix ${inside} of the model's data bucket`, config.urn);
          }
        }
      }
    }
  },
};

export interface EndpointCapConfig {
  maxEndpointInstances: number;
}
export const ENDPOINT_CAP_DEFAULTS: EndpointCapConfig = { maxEndpointInstances: 4 };
/** The dispatcher's cap on concurrent forecasts (trigger/env.ts). */
export const DISPATCHER_CAP_VARIABLE = "MAX_CONCURRENT_JOBS";

export const endpointAutoscalingWithinCap: StackValidationPolicy = {
  name: "endpoint-autoscaling-within-cap",
  description: `SageMaker endpoint autoscaling never allows more instances than the stack's cap on concurrent forecasts (the dispatcher's ${DISPATCHER_CAP_VARIABLE}) nor than maxEndpointInstances.`,
  enforcementLevel: "mandatory",
  severity: "high",
  configSchema: {
    properties: {
      maxEndpointInstances: { type: "integer", minimum: 1, default: ENDPOINT_CAP_DEFAULTS.maxEndpointInstances, description: "Most instances any endpoint variant may scale to." },
    },
  },
  remediationSteps: "Lower fuxi:serving.maxInstances (it may not exceed fuxi:transform.maxConcurrentJobs), or raise the cap deliberately.",
  validateStack: (args, report) => {
    const { maxEndpointInstances } = { ...ENDPOINT_CAP_DEFAULTS, ...args.getConfig<Partial<EndpointCapConfig>>() };
    const caps = ofType(args.resources, T.lambdaFunction)
      .map((f) => Number((f.props.environment as { variables?: Record<string, string> } | undefined)?.variables?.[DISPATCHER_CAP_VARIABLE]))
      .filter((n) => Number.isInteger(n) && n > 0);
    const stackCap = caps.length > 0 ? Math.min(...caps) : undefined;
    for (const target of ofType(args.resources, T.appautoscalingTarget)) {
      if (target.props.serviceNamespace !== "sagemaker") continue;
      const max = Number(target.props.maxCapacity);
      if (!Number.isFinite(max)) {
        report(`${label(target)} has no readable maxCapacity`, target.urn);
        continue;
      }
      if (max > maxEndpointInstances) report(`${label(target)} may scale to ${max} instances, above maxEndpointInstances ${maxEndpointInstances}`, target.urn);
      if (stackCap !== undefined && max > stackCap) report(`${label(target)} may scale to ${max} instances, above the stack's cap of ${stackCap} concurrent forecasts (${DISPATCHER_CAP_VARIABLE})`, target.urn);
      if (Number(target.props.minCapacity) > 0) report(`${label(target)} keeps ${target.props.minCapacity} instance(s) running at all times (minCapacity); expected 0, with warm windows as scheduled actions`, target.urn);
    }
  },
};

export const servingPolicies = [sagemakerEndpointVolumeEncrypted, sagemakerAsyncFailuresAlert, sagemakerAsyncOutputInDataBucket, endpointAutoscalingWithinCap];
