import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsContext, Tags } from "./context";
import { tlsOnlyPolicy } from "./roles";

/** SQS's longest retention: a waiting run is never lost to it (the dispatcher dead-letters first). */
export const QUEUE_RETENTION_SECONDS = 14 * 24 * 3600;
/**
 * Backstop redrive (SQS's largest maxReceiveCount): only a dispatcher that keeps crashing on a message
 * reaches it; waiting runs are dead-lettered by the dispatcher after their maximum wait, and requeued
 * with a fresh count before they get near it.
 */
export const REDRIVE_MAX_RECEIVE_COUNT = 1000;

/** Queue policy: TLS only, and (for the queue S3 notifies) SendMessage from the data bucket of this account only. */
export function runQueuePolicy(p: { queueArn: string; s3?: { principal: string; bucketArn: string; accountId: string } }) {
  const statements: Record<string, unknown>[] = [...tlsOnlyPolicy("sqs:*", p.queueArn).Statement];
  if (p.s3) {
    statements.push({
      Sid: "DataBucketNotifications",
      Effect: "Allow",
      Principal: { Service: p.s3.principal },
      Action: "sqs:SendMessage",
      Resource: p.queueArn,
      Condition: { ArnEquals: { "aws:SourceArn": p.s3.bucketArn }, StringEquals: { "aws:SourceAccount": p.s3.accountId } },
    });
  }
  return { Version: "2012-10-17", Statement: statements };
}

export interface RunQueuesArgs {
  ctx: AwsContext;
  /** Base of the queue names: `<name>-runs`, `<name>-backfill`, `<name>-runs-dlq`. */
  namePrefix: string;
  bucketArn: pulumi.Input<string>;
  /** The dispatcher's timeout: in-flight messages stay invisible 6 times as long (Lambda's advice for SQS sources). */
  functionTimeoutSeconds: number;
  tags: Tags;
}

/**
 * The run queues: marker-driven runs (S3 notifications), backfill runs (`npm run campaign`), and the
 * dead-letter queue both redrive to. SSE with SQS-managed keys (S3 notifications work with it
 * without a KMS key policy) and TLS-only queue policies.
 */
export class RunQueues extends pulumi.ComponentResource {
  readonly operational: aws.sqs.Queue;
  readonly backfill: aws.sqs.Queue;
  readonly deadLetter: aws.sqs.Queue;
  /** The operational queue's policy: S3 can notify it only once it exists. */
  readonly operationalPolicy: aws.sqs.QueuePolicy;

  constructor(name: string, args: RunQueuesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fuxi:queue:RunQueues", name, {}, opts);
    const child = { parent: this };
    const common = { sqsManagedSseEnabled: true, messageRetentionSeconds: QUEUE_RETENTION_SECONDS, tags: args.tags };
    this.deadLetter = new aws.sqs.Queue(`${name}-dlq`, { ...common, name: `${args.namePrefix}-runs-dlq` }, child);
    const redrivePolicy = this.deadLetter.arn.apply((deadLetterTargetArn) => JSON.stringify({ deadLetterTargetArn, maxReceiveCount: REDRIVE_MAX_RECEIVE_COUNT }));
    const visibilityTimeoutSeconds = 6 * args.functionTimeoutSeconds;
    this.operational = new aws.sqs.Queue(`${name}-operational`, { ...common, name: `${args.namePrefix}-runs`, visibilityTimeoutSeconds, redrivePolicy }, child);
    this.backfill = new aws.sqs.Queue(`${name}-backfill`, { ...common, name: `${args.namePrefix}-backfill`, visibilityTimeoutSeconds, redrivePolicy }, child);

    this.operationalPolicy = new aws.sqs.QueuePolicy(`${name}-operational-policy`, {
      queueUrl: this.operational.url,
      policy: pulumi.all([this.operational.arn, args.bucketArn]).apply(([queueArn, bucketArn]) =>
        JSON.stringify(runQueuePolicy({ queueArn, s3: { principal: args.ctx.facts.principals.s3, bucketArn, accountId: args.ctx.accountId } })),
      ),
    }, child);
    for (const [key, queue] of [["backfill", this.backfill], ["dlq", this.deadLetter]] as const) {
      new aws.sqs.QueuePolicy(`${name}-${key}-policy`, {
        queueUrl: queue.url,
        policy: queue.arn.apply((queueArn) => JSON.stringify(runQueuePolicy({ queueArn }))),
      }, child);
    }
    this.registerOutputs({
      operationalQueueUrl: this.operational.url,
      backfillQueueUrl: this.backfill.url,
      deadLetterQueueUrl: this.deadLetter.url,
    });
  }
}
