import type { PolicyResource, ReportViolation, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import { conditionValues, parsePolicyDocument, PolicyDocumentError, type Statement } from "../lib/iam-document";
import { label, ofType, refersTo } from "../lib/links";
import { T } from "../lib/types";
import { asArray } from "../lib/values";

/*
 * @pulumi/aws 7 configures a bucket through separate resources (encryption,
 * public access block, policy, versioning, lifecycle), so every check here is
 * stack-level: each Bucket must have a companion resource that points at it.
 */

const BUCKET_IDENTIFIERS = ["bucket", "id"];

function buckets(args: StackValidationArgs): PolicyResource[] {
  return ofType(args.resources, T.bucket, T.bucketV2);
}

function companionsOf(args: StackValidationArgs, bucket: PolicyResource, types: readonly string[]): PolicyResource[] {
  return ofType(args.resources, ...types).filter((c) => refersTo(c, "bucket", bucket, BUCKET_IDENTIFIERS));
}

/** Runs `check` on each bucket's companions; reports when none exists or none passes. */
function requireCompanion(
  args: StackValidationArgs,
  report: ReportViolation,
  types: readonly string[],
  missing: string,
  check: (companion: PolicyResource) => string | undefined,
): void {
  for (const bucket of buckets(args)) {
    const companions = companionsOf(args, bucket, types);
    if (companions.length === 0) {
      report(`${label(bucket)}: ${missing}`, bucket.urn);
      continue;
    }
    const problems = companions.map(check);
    if (problems.every((p) => p !== undefined)) {
      for (const [i, p] of problems.entries()) report(`${label(bucket)}: ${label(companions[i])} ${p}`, companions[i].urn);
    }
  }
}

const SSE_ALGORITHMS = ["AES256", "aws:kms", "aws:kms:dsse"];

export const s3BucketEncryption: StackValidationPolicy = {
  name: "s3-bucket-encryption",
  description: "Every S3 bucket has default server-side encryption (SSE-S3 or SSE-KMS) configured explicitly.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps: "Add an aws.s3.BucketServerSideEncryptionConfiguration for the bucket with applyServerSideEncryptionByDefault.sseAlgorithm AES256 or aws:kms.",
  validateStack: (args, report) =>
    requireCompanion(args, report, T.sse, "has no BucketServerSideEncryptionConfiguration", (c) => {
      const rules = asArray(c.props.rules as Record<string, any>[] | undefined);
      const algorithms = rules.map((r) => r?.applyServerSideEncryptionByDefault?.sseAlgorithm);
      return algorithms.some((a) => SSE_ALGORITHMS.includes(a))
        ? undefined
        : `sets no default encryption algorithm from ${SSE_ALGORITHMS.join(", ")} (found ${JSON.stringify(algorithms)})`;
    }),
};

const PUBLIC_ACCESS_FLAGS = ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"] as const;

export const s3BucketPublicAccessBlock: StackValidationPolicy = {
  name: "s3-bucket-public-access-block",
  description: "Every S3 bucket has a public access block with all four settings on.",
  enforcementLevel: "mandatory",
  severity: "critical",
  remediationSteps: "Add an aws.s3.BucketPublicAccessBlock for the bucket with blockPublicAcls, blockPublicPolicy, ignorePublicAcls and restrictPublicBuckets all true.",
  validateStack: (args, report) => {
    // An account-wide block with all four settings covers every bucket in the account.
    const accountBlock = ofType(args.resources, T.accountPublicAccessBlock).some((b) => PUBLIC_ACCESS_FLAGS.every((f) => b.props[f] === true));
    if (accountBlock) return;
    requireCompanion(args, report, [T.publicAccessBlock], "has no BucketPublicAccessBlock", (c) => {
      const off = PUBLIC_ACCESS_FLAGS.filter((f) => c.props[f] !== true);
      return off.length === 0 ? undefined : `does not set ${off.join(", ")} to true`;
    });
  },
};

export const s3BucketTlsOnly: StackValidationPolicy = {
  name: "s3-bucket-tls-only",
  description: "Every S3 bucket has a bucket policy that denies requests not made over TLS (aws:SecureTransport false), on the bucket and its objects.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    'Add an aws.s3.BucketPolicy with a statement {Effect: "Deny", Principal: "*", Action: "s3:*", Resource: [bucketArn, bucketArn + "/*"], Condition: {Bool: {"aws:SecureTransport": "false"}}}.',
  validateStack: (args, report) =>
    requireCompanion(args, report, [T.bucketPolicy], "has no BucketPolicy (a TLS-only deny statement is required)", (c) => {
      let statements: Statement[];
      try {
        statements = parsePolicyDocument(c.props.policy, "policy");
      } catch (e) {
        if (e instanceof PolicyDocumentError) return e.message;
        throw e;
      }
      return statements.some(isTlsOnlyDeny)
        ? undefined
        : 'has no statement denying s3:* to every principal on the bucket and its objects when {"Bool": {"aws:SecureTransport": "false"}}';
    }),
};

function appliesToEveryone(principal: unknown): boolean {
  if (principal === "*") return true;
  if (typeof principal !== "object" || principal === null) return false;
  return asArray((principal as Record<string, unknown>).AWS as unknown).includes("*");
}

function isTlsOnlyDeny(st: Statement): boolean {
  if (st.effect !== "Deny" || !appliesToEveryone(st.principal)) return false;
  if (!st.actions.some((a) => a === "*" || a.toLowerCase() === "s3:*")) return false;
  const secureTransport = conditionValues(st, "aws:SecureTransport").some(
    (c) => c.operator === "Bool" && c.values.length > 0 && c.values.every((v) => v.toLowerCase() === "false"),
  );
  if (!secureTransport) return false;
  // Both the bucket ARN (bucket-level calls) and its objects must be covered.
  const bucketLevel = st.resources.some((r) => r === "*" || /^arn:[a-z-]+:s3:::[^/]+$/.test(r));
  const objectLevel = st.resources.some((r) => r === "*" || /^arn:[a-z-]+:s3:::[^/]+\/\*$/.test(r));
  return bucketLevel && objectLevel;
}

export const s3BucketVersioning: StackValidationPolicy = {
  name: "s3-bucket-versioning",
  description: "Every S3 bucket has versioning enabled.",
  enforcementLevel: "mandatory",
  severity: "medium",
  remediationSteps: 'Add an aws.s3.BucketVersioning for the bucket with versioningConfiguration.status "Enabled".',
  validateStack: (args, report) =>
    requireCompanion(args, report, T.versioning, "has no BucketVersioning", (c) => {
      const status = c.props.versioningConfiguration?.status;
      return status === "Enabled" ? undefined : `has versioningConfiguration.status ${JSON.stringify(status)}, expected "Enabled"`;
    }),
};

export interface MultipartConfig {
  maxDaysAfterInitiation: number;
}
export const MULTIPART_DEFAULTS: MultipartConfig = { maxDaysAfterInitiation: 7 };

export const s3BucketAbortIncompleteMultipart: StackValidationPolicy = {
  name: "s3-bucket-abort-incomplete-multipart",
  description:
    "Every S3 bucket has an enabled lifecycle rule, covering the whole bucket, that aborts incomplete multipart uploads (Batch Transform uploads with multipart).",
  enforcementLevel: "mandatory",
  severity: "medium",
  configSchema: {
    properties: {
      maxDaysAfterInitiation: {
        type: "integer",
        minimum: 1,
        default: MULTIPART_DEFAULTS.maxDaysAfterInitiation,
        description: "Largest accepted abortIncompleteMultipartUpload.daysAfterInitiation.",
      },
    },
  },
  remediationSteps:
    'Add an aws.s3.BucketLifecycleConfiguration rule {status: "Enabled", filter: {}, abortIncompleteMultipartUpload: {daysAfterInitiation: 1}}.',
  validateStack: (args, report) => {
    const { maxDaysAfterInitiation } = { ...MULTIPART_DEFAULTS, ...args.getConfig<Partial<MultipartConfig>>() };
    requireCompanion(args, report, T.lifecycle, "has no BucketLifecycleConfiguration", (c) => {
      const rules = asArray(c.props.rules as Record<string, any>[] | undefined);
      const ok = rules.some((r) => {
        const days = r?.abortIncompleteMultipartUpload?.daysAfterInitiation;
        return r?.status === "Enabled" && Number.isInteger(days) && days >= 1 && days <= maxDaysAfterInitiation && coversWholeBucket(r);
      });
      return ok
        ? undefined
        : `has no enabled rule without a prefix/tag/size filter whose abortIncompleteMultipartUpload.daysAfterInitiation is between 1 and ${maxDaysAfterInitiation}`;
    });
  },
};

function coversWholeBucket(rule: Record<string, any>): boolean {
  if (typeof rule.prefix === "string" && rule.prefix !== "") return false;
  const f = rule.filter;
  if (f === undefined || f === null) return true;
  if (typeof f.prefix === "string" && f.prefix !== "") return false;
  return f.and === undefined && f.tag === undefined && f.objectSizeGreaterThan === undefined && f.objectSizeLessThan === undefined;
}

export const s3Policies: StackValidationPolicy[] = [
  s3BucketEncryption,
  s3BucketPublicAccessBlock,
  s3BucketTlsOnly,
  s3BucketVersioning,
  s3BucketAbortIncompleteMultipart,
];
