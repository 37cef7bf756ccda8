import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsContext, Tags } from "./context";
import { arn } from "./partition";

/** EventBridge pattern: this stack's transform jobs ending Failed or Stopped. */
export function transformJobFailurePattern(jobNamePrefix: string) {
  return {
    source: ["aws.sagemaker"],
    "detail-type": ["SageMaker Transform Job State Change"],
    detail: {
      TransformJobStatus: ["Failed", "Stopped"],
      TransformJobName: [{ prefix: `${jobNamePrefix}-` }],
    },
  };
}

export interface AlertsArgs {
  ctx: AwsContext;
  /** Base of the alarm names; the topic policy admits alarms named `<namePrefix>-*`. */
  namePrefix: string;
  jobNamePrefix: string;
  functionName: pulumi.Input<string>;
  /** Stack name: the dimension of the dispatcher's FuXi/RunsNotStarted metric. */
  stack: string;
  operationalQueueName: pulumi.Input<string>;
  deadLetterQueueName: pulumi.Input<string>;
  /** Alarm when the oldest waiting marker-driven run is older than this. */
  oldestRunAlarmMinutes: number;
  /** Secret when the stack stores fuxi:alerts as a secret. */
  emails: pulumi.Input<string>[];
  tags: Tags;
}

/** SNS topic (e-mail subscriptions) fed by an EventBridge rule and the stack's CloudWatch alarms. */
export class Alerts extends pulumi.ComponentResource {
  readonly topicArn: pulumi.Output<string>;
  /** The topic's KMS key (publishers that are IAM principals need kms:GenerateDataKey on it). */
  readonly keyArn: pulumi.Output<string>;

  constructor(name: string, args: AlertsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fuxi:monitoring:Alerts", name, {}, opts);
    const child = { parent: this };
    const { ctx } = args;
    // SNS encryption at rest with a customer managed key: the AWS managed alias/aws/sns key
    // does not let EventBridge and CloudWatch alarms publish to the topic.
    const key = new aws.kms.Key(`${name}-key`, {
      description: `Encrypts the FuXi alert topic of ${args.namePrefix}`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      policy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "AccountAdministersTheKey",
            Effect: "Allow",
            Principal: { AWS: `arn:${ctx.partition}:iam::${ctx.accountId}:root` },
            Action: "kms:*",
            Resource: "*",
          },
          {
            Sid: "AlertPublishersEncrypt",
            Effect: "Allow",
            Principal: { Service: [ctx.facts.principals.events, ctx.facts.principals.cloudwatch] },
            Action: ["kms:Decrypt", "kms:GenerateDataKey"],
            // No aws:SourceAccount condition: AWS's examples for alarms and rules publishing to
            // encrypted topics use none, and an absent key would make StringEquals fail.
            Resource: "*",
          },
        ],
      }),
      tags: args.tags,
    }, child);
    const topic = new aws.sns.Topic(`${name}-topic`, { kmsMasterKeyId: key.arn, tags: args.tags }, child);
    args.emails.forEach((email, i) => {
      new aws.sns.TopicSubscription(`${name}-email-${i}`, { topic: topic.arn, protocol: "email", endpoint: email }, child);
    });

    const rule = new aws.cloudwatch.EventRule(`${name}-transform-failed`, {
      // Named explicitly: the autoname (component name + suffix) passes EventBridge's 64 characters for long prefixes.
      name: `${args.namePrefix}-transform-failed`,
      description: `SageMaker transform jobs ${args.jobNamePrefix}-* that failed or were stopped`,
      eventPattern: JSON.stringify(transformJobFailurePattern(args.jobNamePrefix)),
      tags: args.tags,
    }, child);

    const alarmNamePattern = `${args.namePrefix}-*`;
    // Replaces the default topic policy: only this rule and this stack's alarms may publish.
    const topicPolicy = new aws.sns.TopicPolicy(`${name}-topic-policy`, {
      arn: topic.arn,
      policy: pulumi.all([topic.arn, rule.arn]).apply(([topicArn, ruleArn]) => JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "DenyInsecureTransport",
            Effect: "Deny",
            Principal: "*",
            Action: ["sns:Publish"],
            Resource: topicArn,
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          },
          {
            Sid: "TransformJobFailureRule",
            Effect: "Allow",
            Principal: { Service: ctx.facts.principals.events },
            Action: ["sns:Publish"],
            Resource: topicArn,
            Condition: { ArnEquals: { "aws:SourceArn": ruleArn } },
          },
          {
            Sid: "StackAlarms",
            Effect: "Allow",
            Principal: { Service: ctx.facts.principals.cloudwatch },
            Action: ["sns:Publish"],
            Resource: topicArn,
            Condition: {
              ArnLike: { "aws:SourceArn": arn(ctx, "cloudwatch", `alarm:${alarmNamePattern}`) },
              StringEquals: { "aws:SourceAccount": ctx.accountId },
            },
          },
        ],
      })),
    }, child);

    new aws.cloudwatch.EventTarget(`${name}-transform-failed-target`, {
      rule: rule.name,
      arn: topic.arn,
    }, { parent: this, dependsOn: [topicPolicy] });

    // Both alarms fire on any non-zero value in a 5-minute period and publish to the topic.
    const anyInFiveMinutes = {
      period: 300,
      evaluationPeriods: 1,
      threshold: 0,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "notBreaching",
      alarmActions: [topic.arn],
      tags: args.tags,
    };

    new aws.cloudwatch.MetricAlarm(`${name}-trigger-errors`, {
      ...anyInFiveMinutes,
      name: `${args.namePrefix}-trigger-errors`,
      alarmDescription: "The trigger Lambda reported errors (see its log group).",
      namespace: "AWS/Lambda",
      metricName: "Errors",
      dimensions: { FunctionName: args.functionName },
      statistic: "Sum",
    }, child);

    new aws.cloudwatch.MetricAlarm(`${name}-dead-letters`, {
      ...anyInFiveMinutes,
      name: `${args.namePrefix}-dead-letters`,
      alarmDescription: "Runs that will not start are in the dead-letter queue (npm run runs -- --stack <name> shows why; npm run runs -- replay puts them back).",
      namespace: "AWS/SQS",
      metricName: "ApproximateNumberOfMessagesVisible",
      dimensions: { QueueName: args.deadLetterQueueName },
      statistic: "Maximum",
    }, child);

    new aws.cloudwatch.MetricAlarm(`${name}-runs-not-started`, {
      ...anyInFiveMinutes,
      name: `${args.namePrefix}-runs-not-started`,
      alarmDescription: "The dispatcher rejected a run (bad folder, unknown model, AccessDenied, waited too long): see its _FAILED.json.",
      namespace: "FuXi",
      metricName: "RunsNotStarted",
      dimensions: { Stack: args.stack },
      statistic: "Sum",
    }, child);

    new aws.cloudwatch.MetricAlarm(`${name}-oldest-waiting-run`, {
      ...anyInFiveMinutes,
      threshold: args.oldestRunAlarmMinutes * 60,
      name: `${args.namePrefix}-oldest-waiting-run`,
      alarmDescription: `A marker-driven run has waited more than ${args.oldestRunAlarmMinutes} min for a transform slot (cap or account quota too small for the backlog?).`,
      namespace: "AWS/SQS",
      metricName: "ApproximateAgeOfOldestMessage",
      dimensions: { QueueName: args.operationalQueueName },
      statistic: "Maximum",
    }, child);

    this.topicArn = topic.arn;
    this.keyArn = key.arn;
    this.registerOutputs({ topicArn: this.topicArn, keyArn: this.keyArn });
  }
}
