import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { Tags } from "./context";
import type { ModelLocation } from "./roles";

/** SageMaker allows at most 16 entries in a container's Environment. */
export const MAX_MODEL_ENVIRONMENT_ENTRIES = 16;

export interface RuntimeSettings {
  providers: string[];
  allowCpu: boolean;
  keepAllStages: boolean;
  stepsInFlight: number;
  intraOpThreads?: number;
  logLevel: string;
}

/**
 * The runtime's environment (docs/contract.md, "Runtime environment"). A prefix
 * of model files becomes FUXI_MODEL_S3_URI (downloaded at start); an archive is
 * ModelDataUrl instead and lands in the default FUXI_MODEL_DIR.
 */
export function runtimeEnvironment(model: ModelLocation, runtime: RuntimeSettings, instance: InstanceResources): Record<string, string> {
  const env: Record<string, string> = {
    // Recorded in each run manifest's usage: a container cannot ask SageMaker which instance it is on.
    FUXI_INSTANCE_TYPE: instance.instanceType,
    FUXI_INSTANCE_COUNT: String(instance.instanceCount),
    FUXI_PROVIDERS: runtime.providers.join(","),
    FUXI_ALLOW_CPU: String(runtime.allowCpu),
    FUXI_KEEP_ALL_STAGES: String(runtime.keepAllStages),
    FUXI_STEPS_IN_FLIGHT: String(runtime.stepsInFlight),
    LOG_LEVEL: runtime.logLevel,
  };
  if (model.kind === "prefix") env.FUXI_MODEL_S3_URI = `s3://${model.bucket}/${model.key}`;
  if (runtime.intraOpThreads !== undefined) env.FUXI_INTRA_OP_THREADS = String(runtime.intraOpThreads);
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
  /** repository@sha256:digest */
  imageUri: pulumi.Input<string>;
  executionRoleArn: pulumi.Input<string>;
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
    const model = new aws.sagemaker.Model(name, {
      executionRoleArn: args.executionRoleArn,
      primaryContainer: {
        image: imageUri,
        mode: "SingleModel",
        environment: runtimeEnvironment(args.model, args.runtime, args.instance),
        ...(args.model.kind === "archive" ? { modelDataUrl: `s3://${args.model.bucket}/${args.model.key}` } : {}),
      },
      tags: args.tags,
    }, { parent: this });
    this.modelName = model.name;
    this.modelArn = model.arn;
    this.registerOutputs({ modelName: this.modelName, modelArn: this.modelArn });
  }
}
