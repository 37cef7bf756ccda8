import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { formatS3Uri, RUNTIME_ENV, type RequestLanes, type RuntimeEnvName } from "../runtime/src/contract";
import type { Tags } from "./context";
import type { ModelLocation, Prefixes } from "./roles";

/** SageMaker allows at most 16 entries in a container's Environment. */
export const MAX_MODEL_ENVIRONMENT_ENTRIES = 16;

export interface RuntimeSettings {
  providers: string[];
  allowCpu: boolean;
  keepAllStages: boolean;
  prefetchNextStage: boolean;
  stepsInFlight: number;
  intraOpThreads?: number;
  logLevel: string;
}

/**
 * The runtime's environment (docs/contract.md, "Runtime environment"): the stack's lanes (bucket,
 * input and output prefix) and the runtime settings. A prefix of model files becomes
 * FUXI_MODEL_S3_URI (downloaded at start); an archive is ModelDataUrl instead and lands in the
 * default FUXI_MODEL_DIR.
 */
export function runtimeEnvironment(model: ModelLocation, runtime: RuntimeSettings, lanes: RequestLanes, instance: InstanceResources): Partial<Record<RuntimeEnvName, string>> {
  const env: Partial<Record<RuntimeEnvName, string>> = {
    [RUNTIME_ENV.dataBucket]: lanes.bucket,
    [RUNTIME_ENV.inputPrefix]: lanes.inputPrefix,
    [RUNTIME_ENV.outputPrefix]: lanes.outputPrefix,
    // Recorded in each run manifest's usage: a container cannot ask SageMaker which instance it is on.
    [RUNTIME_ENV.instanceType]: instance.instanceType,
    [RUNTIME_ENV.instanceCount]: String(instance.instanceCount),
    [RUNTIME_ENV.providers]: runtime.providers.join(","),
    [RUNTIME_ENV.allowCpu]: String(runtime.allowCpu),
    [RUNTIME_ENV.keepAllStages]: String(runtime.keepAllStages),
    [RUNTIME_ENV.stepsInFlight]: String(runtime.stepsInFlight),
    [RUNTIME_ENV.logLevel]: runtime.logLevel,
  };
  if (model.kind === "prefix") env[RUNTIME_ENV.modelS3Uri] = formatS3Uri(model);
  if (runtime.prefetchNextStage) env[RUNTIME_ENV.prefetchNextStage] = "true";
  if (runtime.intraOpThreads !== undefined) env[RUNTIME_ENV.intraOpThreads] = String(runtime.intraOpThreads);
  if (Object.keys(env).length > MAX_MODEL_ENVIRONMENT_ENTRIES) {
    throw new Error(`model Environment has ${Object.keys(env).length} entries; SageMaker allows at most ${MAX_MODEL_ENVIRONMENT_ENTRIES}`);
  }
  return env;
}

/** The transform jobs' TransformResources (the trigger starts every job with the same). */
export interface InstanceResources {
  instanceType: string;
  instanceCount: number;
}

export interface ForecastModelArgs {
  /** Base of the model's physical name (`<namePrefix>-model-<random>`); a model is stateless, so a new prefix just replaces it. */
  namePrefix: string;
  /** repository@sha256:digest */
  imageUri: pulumi.Input<string>;
  executionRoleArn: pulumi.Input<string>;
  /** The data bucket and its prefixes: the runtime serves only requests inside them. */
  bucketName: pulumi.Input<string>;
  prefixes: Prefixes;
  model: ModelLocation;
  runtime: RuntimeSettings;
  instance: InstanceResources;
  tags: Tags;
}

/**
 * The SageMaker model Batch Transform runs. ModelDataUrl only for a .tar.gz:
 * CreateTransformJob rejects models that use ModelDataSource.
 * Autonamed, so a new image digest creates the replacement before deleting the old.
 */
export class ForecastModel extends pulumi.ComponentResource {
  readonly modelName: pulumi.Output<string>;
  readonly modelArn: pulumi.Output<string>;

  constructor(name: string, args: ForecastModelArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fuxi:sagemaker:ForecastModel", name, {}, opts);
    const imageUri = pulumi.output(args.imageUri).apply((uri) => {
      if (!/@sha256:[0-9a-f]{64}$/.test(uri)) throw new Error(`ForecastModel ${name}: image ${JSON.stringify(uri)} is not pinned by digest; expected repository@sha256:<64 hex>`);
      return uri;
    });
    const model = new aws.sagemaker.Model(`${args.namePrefix}-model`, {
      executionRoleArn: args.executionRoleArn,
      primaryContainer: {
        image: imageUri,
        mode: "SingleModel",
        environment: pulumi.output(args.bucketName).apply((bucket) =>
          runtimeEnvironment(args.model, args.runtime, { bucket, inputPrefix: args.prefixes.input, outputPrefix: args.prefixes.output }, args.instance) as Record<string, string>,
        ),
        ...(args.model.kind === "archive" ? { modelDataUrl: formatS3Uri(args.model) } : {}),
      },
      tags: args.tags,
    }, { parent: this });
    this.modelName = model.name;
    this.modelArn = model.arn;
    this.registerOutputs({ modelName: this.modelName, modelArn: this.modelArn });
  }
}
