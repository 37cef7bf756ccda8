import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { Tags } from "./context";
import { WarmWindows, type WarmWindow } from "./warmWindows";

/** The scalable dimension of a SageMaker endpoint variant. */
export const VARIANT_INSTANCE_COUNT = "sagemaker:variant:DesiredInstanceCount";
/**
 * Target of ApproximateBacklogSizePerInstance: one forecast (running or waiting) per instance.
 * With MaxConcurrentInvocationsPerInstance 1, a second waiting run adds an instance, up to the cap.
 */
export const BACKLOG_PER_INSTANCE_TARGET = 1;

export interface EndpointScalingArgs {
  endpointName: pulumi.Input<string>;
  variantName: string;
  /** Autoscaling maximum: serving.maxInstances, never above transform.maxConcurrentJobs. */
  maxInstances: number;
  scaleInCooldownMinutes: number;
  warmWindows: WarmWindow[];
  /** Base of the alarm name; the alert topic admits alarms named `<namePrefix>-*`. */
  namePrefix: string;
  tags: Tags;
}

/**
 * Application Auto Scaling for the async endpoint (docs: sagemaker/latest/dg/async-inference-autoscale):
 * minimum 0; a target-tracking policy on ApproximateBacklogSizePerInstance scales out with the backlog
 * and back in to zero when idle; target tracking cannot leave zero instances by itself (a per-instance
 * metric of zero instances), so a step policy on the HasBacklogWithoutCapacity alarm adds the first
 * instance; scheduled actions hold one instance warm in each warm window.
 */
export class EndpointScaling extends pulumi.ComponentResource {
  readonly resourceId: pulumi.Output<string>;

  constructor(name: string, args: EndpointScalingArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fuxi:serving:EndpointScaling", name, {}, opts);
    const child = { parent: this };
    const resourceId = pulumi.interpolate`endpoint/${args.endpointName}/variant/${args.variantName}`;
    const dimensions = { EndpointName: args.endpointName };

    const target = new aws.appautoscaling.Target(`${name}-target`, {
      serviceNamespace: "sagemaker",
      resourceId,
      scalableDimension: VARIANT_INSTANCE_COUNT,
      minCapacity: 0,
      maxCapacity: args.maxInstances,
      tags: args.tags,
    }, child);
    const targetRef = { serviceNamespace: target.serviceNamespace, resourceId: target.resourceId, scalableDimension: target.scalableDimension };

    new aws.appautoscaling.Policy(`${name}-backlog`, {
      ...targetRef,
      policyType: "TargetTrackingScaling",
      targetTrackingScalingPolicyConfiguration: {
        targetValue: BACKLOG_PER_INSTANCE_TARGET,
        customizedMetricSpecification: {
          metricName: "ApproximateBacklogSizePerInstance",
          namespace: "AWS/SageMaker",
          dimensions: [{ name: "EndpointName", value: args.endpointName }],
          statistic: "Average",
        },
        scaleInCooldown: args.scaleInCooldownMinutes * 60,
        scaleOutCooldown: 60,
      },
    }, child);

    const fromZero = new aws.appautoscaling.Policy(`${name}-from-zero`, {
      ...targetRef,
      policyType: "StepScaling",
      stepScalingPolicyConfiguration: {
        adjustmentType: "ChangeInCapacity",
        metricAggregationType: "Maximum",
        cooldown: 300,
        stepAdjustments: [{ metricIntervalLowerBound: "0", scalingAdjustment: 1 }],
      },
    }, child);

    new aws.cloudwatch.MetricAlarm(`${name}-backlog-without-capacity`, {
      name: `${args.namePrefix}-backlog-without-capacity`,
      alarmDescription: "A run waits on the async endpoint while it has no instance: adds the first one.",
      namespace: "AWS/SageMaker",
      metricName: "HasBacklogWithoutCapacity",
      dimensions,
      statistic: "Average",
      period: 60,
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      threshold: 1,
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      treatMissingData: "missing",
      alarmActions: [fromZero.arn],
      tags: args.tags,
    }, child);

    new WarmWindows(`${name}-warm`, {
      resourceId: target.resourceId,
      scalableDimension: target.scalableDimension,
      windows: args.warmWindows,
      idleMinCapacity: 0,
      maxCapacity: args.maxInstances,
    }, child);

    this.resourceId = target.resourceId;
    this.registerOutputs({ resourceId: this.resourceId });
  }
}
