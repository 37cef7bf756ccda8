import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsContext, Tags } from "./context";
import { s3Arn } from "./partition";

export interface DataBucketArgs {
  ctx: AwsContext;
  /** Adopt this existing bucket instead of creating one (nothing is changed on it here). */
  existingName?: string;
  forceDestroy: boolean;
  requestsPrefix: string;
  requestExpiryDays: number;
  abortMultipartAfterDays: number;
  tags: Tags;
}

/**
 * The stack's data bucket: private, SSE-S3, versioned, TLS only, with lifecycle
 * rules that abort incomplete multipart uploads (Batch Transform and the runtime
 * upload with multipart) and expire forecast request objects.
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
      this.bucketName = pulumi.output(args.existingName);
      this.bucketArn = pulumi.output(s3Arn(partition, args.existingName));
      this.registerOutputs({ bucketName: this.bucketName, bucketArn: this.bucketArn });
      return;
    }
    this.managed = true;
    const child = { parent: this };
    const bucket = new aws.s3.Bucket(name, { forceDestroy: args.forceDestroy, tags: args.tags }, child);
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
          noncurrentVersionExpiration: { noncurrentDays: 30 },
        },
        {
          id: "expire-forecast-requests",
          status: "Enabled",
          filter: { prefix: args.requestsPrefix },
          expiration: { days: args.requestExpiryDays },
        },
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
