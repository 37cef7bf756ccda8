import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsContext, Tags } from "./context";
import { s3Arn } from "./partition";
import { DEFAULT_ARCHIVE_CLASS, type OutputRetention } from "../cost";

/** Noncurrent versions (re-run outputs, expired objects) are deleted this many days after they became noncurrent. */
export const NONCURRENT_VERSION_DAYS = 30;

/** The lifecycle rule for `fuxi:dataBucket.outputRetention` on the output prefix (undefined: keep forever). */
export function outputRetentionRule(outputPrefix: string, retention: OutputRetention | undefined): aws.types.input.s3.BucketLifecycleConfigurationRule | undefined {
  if (!retention) return undefined;
  const transitions: aws.types.input.s3.BucketLifecycleConfigurationRuleTransition[] = [];
  if (retention.infrequentAccessAfterDays !== undefined) transitions.push({ days: retention.infrequentAccessAfterDays, storageClass: "STANDARD_IA" });
  if (retention.archiveAfterDays !== undefined) transitions.push({ days: retention.archiveAfterDays, storageClass: retention.archiveClass ?? DEFAULT_ARCHIVE_CLASS });
  if (transitions.length === 0 && retention.expireAfterDays === undefined) return undefined;
  return {
    id: "forecast-output-retention",
    status: "Enabled",
    filter: { prefix: outputPrefix },
    ...(transitions.length > 0 ? { transitions } : {}),
    ...(retention.expireAfterDays !== undefined ? { expiration: { days: retention.expireAfterDays } } : {}),
  };
}

export interface DataBucketArgs {
  ctx: AwsContext;
  /** Adopt this existing bucket instead of creating one: it and its settings are read (never changed here), so the policy pack checks them. */
  existingName?: string;
  /** Base of the created bucket's name (`<namePrefix>-data-<random>`); kept when the prefix is renamed later. */
  namePrefix: string;
  forceDestroy: boolean;
  /** Pulumi protect / retainOnDelete for the created bucket (data safety in prod-like stacks). */
  protect: boolean;
  retainOnDelete: boolean;
  requestsPrefix: string;
  requestExpiryDays: number;
  /** Forecast output: transitions and expiry from `outputRetention` (none: kept in STANDARD forever). */
  outputPrefix: string;
  outputRetention?: OutputRetention;
  abortMultipartAfterDays: number;
  tags: Tags;
}

/**
 * The stack's data bucket: private, SSE-S3, versioned, TLS only, with lifecycle
 * rules that abort incomplete multipart uploads (Batch Transform and the runtime
 * upload with multipart), expire forecast request objects and, when configured,
 * move forecast output to cheaper classes and expire it.
 */
export class DataBucket extends pulumi.ComponentResource {
  readonly bucketName: pulumi.Output<string>;
  readonly bucketArn: pulumi.Output<string>;
  /** True when the bucket was created by this stack. */
  readonly managed: boolean;

  constructor(name: string, args: DataBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fuxi:storage:DataBucket", name, {}, opts);
    const partition = args.ctx.partition;
    if (args.existingName !== undefined) {
      this.managed = false;
      const id = args.existingName;
      const read = { parent: this };
      // Read, not managed: each read fails the preview if the setting is absent (no policy,
      // no public access block, ...), and the pack's s3-bucket-companions checks what is read.
      const bucket = aws.s3.Bucket.get(`${name}-adopted`, id, undefined, read);
      aws.s3.BucketPublicAccessBlock.get(`${name}-adopted-public-access`, id, undefined, read);
      aws.s3.BucketServerSideEncryptionConfiguration.get(`${name}-adopted-sse`, id, undefined, read);
      aws.s3.BucketVersioning.get(`${name}-adopted-versioning`, id, undefined, read);
      aws.s3.BucketLifecycleConfiguration.get(`${name}-adopted-lifecycle`, id, undefined, read);
      aws.s3.BucketPolicy.get(`${name}-adopted-policy`, id, undefined, read);
      this.bucketName = bucket.bucket;
      this.bucketArn = pulumi.output(s3Arn(partition, args.existingName));
      this.registerOutputs({ bucketName: this.bucketName, bucketArn: this.bucketArn });
      return;
    }
    this.managed = true;
    const child = { parent: this };
    const bucket = new aws.s3.Bucket(name, { bucketPrefix: dataBucketPrefix(args.namePrefix), forceDestroy: args.forceDestroy, tags: args.tags }, {
      parent: this,
      protect: args.protect,
      retainOnDelete: args.retainOnDelete,
      // The physical name is fixed at creation: renaming the prefix must not replace the bucket.
      ignoreChanges: ["bucketPrefix"],
    });
    const publicAccess = new aws.s3.BucketPublicAccessBlock(`${name}-public-access`, {
      bucket: bucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    }, child);
    new aws.s3.BucketOwnershipControls(`${name}-ownership`, {
      bucket: bucket.id,
      rule: { objectOwnership: "BucketOwnerEnforced" },
    }, child);
    new aws.s3.BucketServerSideEncryptionConfiguration(`${name}-sse`, {
      bucket: bucket.id,
      rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }],
    }, child);
    const versioning = new aws.s3.BucketVersioning(`${name}-versioning`, {
      bucket: bucket.id,
      versioningConfiguration: { status: "Enabled" },
    }, child);
    new aws.s3.BucketLifecycleConfiguration(`${name}-lifecycle`, {
      bucket: bucket.id,
      rules: [
        {
          id: "abort-incomplete-multipart-uploads",
          status: "Enabled",
          filter: { prefix: "" },
          abortIncompleteMultipartUpload: { daysAfterInitiation: args.abortMultipartAfterDays },
          // Re-run outputs overwrite 290 MB steps; do not keep old versions forever.
          noncurrentVersionExpiration: { noncurrentDays: NONCURRENT_VERSION_DAYS },
        },
        {
          id: "expire-forecast-requests",
          status: "Enabled",
          filter: { prefix: args.requestsPrefix },
          expiration: { days: args.requestExpiryDays },
        },
        ...[outputRetentionRule(args.outputPrefix, args.outputRetention)].filter((r) => r !== undefined),
      ],
    }, { parent: this, dependsOn: [versioning] });
    new aws.s3.BucketPolicy(`${name}-tls-only`, {
      bucket: bucket.id,
      policy: pulumi.jsonStringify({
        Version: "2012-10-17",
        Statement: [{
          Sid: "DenyInsecureTransport",
          Effect: "Deny",
          Principal: "*",
          Action: "s3:*",
          Resource: [bucket.arn, pulumi.interpolate`${bucket.arn}/*`],
          Condition: { Bool: { "aws:SecureTransport": "false" } },
        }],
      }),
    }, { parent: this, dependsOn: [publicAccess] });

    this.bucketName = bucket.bucket;
    this.bucketArn = bucket.arn;
    this.registerOutputs({ bucketName: this.bucketName, bucketArn: this.bucketArn });
  }
}

/** The provider appends 26 characters to a bucketPrefix and S3 allows 63: at most 37, so a long job-name prefix is cut. */
export function dataBucketPrefix(namePrefix: string): string {
  return `${namePrefix.slice(0, 31).replace(/-+$/, "")}-data-`;
}

/** Notification rules of an adopted bucket, as S3 reports them (aws.s3.getBucketNotification). */
export interface BucketNotificationState {
  lambdaFunctions?: { id?: string }[];
  queues?: { id?: string }[];
  topics?: { id?: string }[];
  eventbridge?: boolean;
}

/**
 * What the stack's BucketNotification would overwrite on an adopted bucket: rules whose id
 * does not start with this stack's prefix, and EventBridge delivery (S3 holds one
 * notification configuration per bucket, and PutBucketNotificationConfiguration replaces it).
 */
export function foreignNotifications(state: BucketNotificationState, ownIdPrefix: string): string[] {
  const foreign: string[] = [];
  for (const [kind, list] of [["Lambda", state.lambdaFunctions], ["SQS", state.queues], ["SNS", state.topics]] as const) {
    for (const rule of list ?? []) if (!(rule.id ?? "").startsWith(ownIdPrefix)) foreign.push(`${kind} rule ${JSON.stringify(rule.id ?? "(no id)")}`);
  }
  if (state.eventbridge) foreign.push("EventBridge delivery");
  return foreign;
}

/** Fails before anything is created when adopting would replace notification rules the stack did not create. */
export async function checkAdoptedNotifications(bucket: string, ownIdPrefix: string, replaceNotifications: boolean): Promise<void> {
  if (replaceNotifications) return;
  const state = await aws.s3.getBucketNotification({ bucket });
  const foreign = foreignNotifications(state, ownIdPrefix);
  if (foreign.length > 0) {
    throw new Error(
      `fuxi:dataBucket.existingName: bucket ${JSON.stringify(bucket)} has notification rules this stack did not create (${foreign.join(", ")}); ` +
        "the stack's configuration would replace them (S3 keeps one per bucket). Move them elsewhere, or set fuxi:dataBucket.replaceNotifications: true to replace them.",
    );
  }
}
