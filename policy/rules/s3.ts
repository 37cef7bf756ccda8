import type { PolicyResource, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import { isTlsOnlyDeny, parsePolicyDocument, PolicyDocumentError, type Statement } from "../lib/iam-document";
import { label, ofType, refersTo } from "../lib/links";
import { T } from "../lib/types";
import { asArray } from "../lib/values";

/*
 * @pulumi/aws 7 configures a bucket through separate resources (encryption,
 * public access block, policy, versioning, lifecycle). Each of those carries
 * its whole setting (S3 holds one of each per bucket), so its content is
 * checked by a resource validation, which the engine runs before the resource
 * is created or changed. Whether every bucket HAS them is a cross-resource
 * question: `s3-bucket-companions`, a stack validation that gates through the
 * preview the deploy workflow runs before `pulumi up` (docs/policy.md).
 * A bucket adopted by name (read with aws.s3.Bucket.get, so it is in the stack
 * as an external resource) is checked on the state S3 reports for it.
 */

const BUCKET_IDENTIFIERS = ["bucket", "id"];

function buckets(args: StackValidationArgs): PolicyResource[] {
  return ofType(args.resources, T.bucket, T.bucketV2);
}

function only(args: ResourceValidationArgs, types: readonly string[]): void {
  if (!types.includes(args.type)) args.notApplicable(`not one of ${types.join(", ")}`);
}

const SSE_ALGORITHMS = ["AES256", "aws:kms", "aws:kms:dsse"];

function encryptionProblem(rules: unknown): string | undefined {
  const algorithms = asArray(rules as Record<string, any>[] | undefined).map((r) => r?.applyServerSideEncryptionByDefault?.sseAlgorithm);
  return algorithms.some((a) => SSE_ALGORITHMS.includes(a)) ? undefined : `sets no default encryption algorithm from ${SSE_ALGORITHMS.join(", ")} (found ${JSON.stringify(algorithms)})`;
}

export const s3BucketEncryption: ResourceValidationPolicy = {
  name: "s3-bucket-encryption",
  description: "S3 default encryption configurations set SSE-S3 or SSE-KMS.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps: "Set rules[0].applyServerSideEncryptionByDefault.sseAlgorithm to AES256 or aws:kms.",
  validateResource: (args, report) => {
    only(args, T.sse);
    const problem = encryptionProblem(args.props.rules);
    if (problem) report(`${label(args)} ${problem}`);
  },
};

const PUBLIC_ACCESS_FLAGS = ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"] as const;

export const s3BucketPublicAccessBlock: ResourceValidationPolicy = {
  name: "s3-bucket-public-access-block",
  description: "S3 public access blocks (per bucket or account-wide) turn all four settings on.",
  enforcementLevel: "mandatory",
  severity: "critical",
  remediationSteps: "Set blockPublicAcls, blockPublicPolicy, ignorePublicAcls and restrictPublicBuckets to true.",
  validateResource: (args, report) => {
    only(args, [T.publicAccessBlock, T.accountPublicAccessBlock]);
    const off = PUBLIC_ACCESS_FLAGS.filter((f) => args.props[f] !== true);
    if (off.length > 0) report(`${label(args)} does not set ${off.join(", ")} to true`);
  },
};

function readPolicy(policy: unknown, where: string): Statement[] | string {
  try {
    return parsePolicyDocument(policy, where);
  } catch (e) {
    if (e instanceof PolicyDocumentError) return e.message;
    throw e;
  }
}

/** A TLS-only deny must cover the bucket (bucket-level calls) and its objects. */
function isS3TlsOnlyDeny(st: Statement): boolean {
  if (!isTlsOnlyDeny(st, "s3")) return false;
  const bucketLevel = st.resources.some((r) => r === "*" || /^arn:[a-z-]+:s3:::[^/]+$/.test(r));
  const objectLevel = st.resources.some((r) => r === "*" || /^arn:[a-z-]+:s3:::[^/]+\/\*$/.test(r));
  return bucketLevel && objectLevel;
}

const TLS_PROBLEM = 'has no statement denying s3:* to every principal on the bucket and its objects when {"Bool": {"aws:SecureTransport": "false"}}';

function bucketPolicyProblems(policy: unknown, where: string): string[] {
  const statements = readPolicy(policy, where);
  if (typeof statements === "string") return [statements];
  const problems: string[] = [];
  if (!statements.some(isS3TlsOnlyDeny)) problems.push(TLS_PROBLEM);
  return problems;
}

export const s3BucketTlsOnly: ResourceValidationPolicy = {
  name: "s3-bucket-tls-only",
  description: "S3 bucket policies deny requests not made over TLS (aws:SecureTransport false), on the bucket and its objects.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    'Add the statement {Effect: "Deny", Principal: "*", Action: "s3:*", Resource: [bucketArn, bucketArn + "/*"], Condition: {Bool: {"aws:SecureTransport": "false"}}}.',
  validateResource: (args, report) => {
    only(args, [T.bucketPolicy]);
    for (const p of bucketPolicyProblems(args.props.policy, "policy")) report(`${label(args)} ${p}`);
  },
};

function versioningProblem(status: unknown): string | undefined {
  return status === "Enabled" ? undefined : `has versioning status ${JSON.stringify(status)}, expected "Enabled"`;
}

export const s3BucketVersioning: ResourceValidationPolicy = {
  name: "s3-bucket-versioning",
  description: "S3 bucket versioning configurations are Enabled.",
  enforcementLevel: "mandatory",
  severity: "medium",
  remediationSteps: 'Set versioningConfiguration.status to "Enabled".',
  validateResource: (args, report) => {
    only(args, T.versioning);
    const problem = versioningProblem(args.props.versioningConfiguration?.status);
    if (problem) report(`${label(args)} ${problem}`);
  },
};

export interface MultipartConfig {
  maxDaysAfterInitiation: number;
}
export const MULTIPART_DEFAULTS: MultipartConfig = { maxDaysAfterInitiation: 7 };
const MULTIPART_CONFIG_SCHEMA = {
  properties: {
    maxDaysAfterInitiation: {
      type: "integer" as const,
      minimum: 1,
      default: MULTIPART_DEFAULTS.maxDaysAfterInitiation,
      description: "Largest accepted abortIncompleteMultipartUpload.daysAfterInitiation.",
    },
  },
};

function coversWholeBucket(rule: Record<string, any>): boolean {
  if (typeof rule.prefix === "string" && rule.prefix !== "") return false;
  const f = Array.isArray(rule.filters) ? rule.filters[0] : rule.filter;
  if (f === undefined || f === null) return true;
  if (typeof f.prefix === "string" && f.prefix !== "") return false;
  return f.and === undefined && f.tag === undefined && f.objectSizeGreaterThan === undefined && f.objectSizeLessThan === undefined;
}

function multipartProblem(rules: unknown, maxDays: number, days: (r: Record<string, any>) => unknown, enabled: (r: Record<string, any>) => boolean): string | undefined {
  const ok = asArray(rules as Record<string, any>[] | undefined).some((r) => {
    const d = days(r);
    return enabled(r) && Number.isInteger(d) && (d as number) >= 1 && (d as number) <= maxDays && coversWholeBucket(r);
  });
  return ok ? undefined : `has no enabled rule without a prefix/tag/size filter whose abortIncompleteMultipartUpload.daysAfterInitiation is between 1 and ${maxDays}`;
}

export const s3BucketAbortIncompleteMultipart: ResourceValidationPolicy = {
  name: "s3-bucket-abort-incomplete-multipart",
  description:
    "S3 lifecycle configurations hold an enabled rule, covering the whole bucket, that aborts incomplete multipart uploads (Batch Transform and the runtime upload with multipart).",
  enforcementLevel: "mandatory",
  severity: "medium",
  configSchema: MULTIPART_CONFIG_SCHEMA,
  remediationSteps: 'Add the rule {status: "Enabled", filter: {}, abortIncompleteMultipartUpload: {daysAfterInitiation: 1}}.',
  validateResource: (args, report) => {
    only(args, T.lifecycle);
    const { maxDaysAfterInitiation } = { ...MULTIPART_DEFAULTS, ...args.getConfig<Partial<MultipartConfig>>() };
    const problem = multipartProblem(args.props.rules, maxDaysAfterInitiation, (r) => r?.abortIncompleteMultipartUpload?.daysAfterInitiation, (r) => r?.status === "Enabled");
    if (problem) report(`${label(args)} ${problem}`);
  },
};

/** The companions a bucket needs, with the content check of the matching resource rule. */
interface Companion {
  kind: string;
  types: readonly string[];
  problem: (c: PolicyResource, maxDays: number) => string | undefined;
}

const COMPANIONS: Companion[] = [
  { kind: "BucketServerSideEncryptionConfiguration", types: T.sse, problem: (c) => encryptionProblem(c.props.rules) },
  {
    kind: "BucketPublicAccessBlock",
    types: [T.publicAccessBlock],
    problem: (c) => {
      const off = PUBLIC_ACCESS_FLAGS.filter((f) => c.props[f] !== true);
      return off.length === 0 ? undefined : `does not set ${off.join(", ")} to true`;
    },
  },
  { kind: "BucketPolicy (a TLS-only deny statement is required)", types: [T.bucketPolicy], problem: (c) => bucketPolicyProblems(c.props.policy, "policy")[0] },
  { kind: "BucketVersioning", types: T.versioning, problem: (c) => versioningProblem(c.props.versioningConfiguration?.status) },
  {
    kind: "BucketLifecycleConfiguration",
    types: T.lifecycle,
    problem: (c, maxDays) => multipartProblem(c.props.rules, maxDays, (r) => r?.abortIncompleteMultipartUpload?.daysAfterInitiation, (r) => r?.status === "Enabled"),
  },
];

export const s3BucketCompanions: StackValidationPolicy = {
  name: "s3-bucket-companions",
  description:
    "Every S3 bucket in the stack, created or adopted (dataBucket.existingName reads the bucket and its settings), has encryption, a public access block, a TLS-only policy, versioning and a multipart-abort lifecycle rule.",
  enforcementLevel: "mandatory",
  severity: "high",
  configSchema: MULTIPART_CONFIG_SCHEMA,
  remediationSteps: "Create the missing aws.s3.Bucket* resource for the bucket (components/dataBucket.ts creates all five); for an adopted bucket, fix the bucket's own settings.",
  validateStack: (args, report: ReportViolation) => {
    const { maxDaysAfterInitiation } = { ...MULTIPART_DEFAULTS, ...args.getConfig<Partial<MultipartConfig>>() };
    const accountBlock = ofType(args.resources, T.accountPublicAccessBlock).some((b) => PUBLIC_ACCESS_FLAGS.every((f) => b.props[f] === true));
    for (const bucket of buckets(args)) {
      for (const c of COMPANIONS) {
        if (c.types.includes(T.publicAccessBlock) && accountBlock) continue;
        const found = ofType(args.resources, ...c.types).filter((r) => refersTo(r, "bucket", bucket, BUCKET_IDENTIFIERS));
        if (found.length === 0) {
          report(`${label(bucket)}: has no ${c.kind}`, bucket.urn);
          continue;
        }
        const problems = found.map((f) => c.problem(f, maxDaysAfterInitiation));
        if (problems.every((p) => p !== undefined)) {
          for (const [i, p] of problems.entries()) report(`${label(bucket)}: ${label(found[i])} ${p}`, found[i].urn);
        }
      }
    }
  },
};

export const s3Policies: (ResourceValidationPolicy | StackValidationPolicy)[] = [
  s3BucketEncryption,
  s3BucketPublicAccessBlock,
  s3BucketTlsOnly,
  s3BucketVersioning,
  s3BucketAbortIncompleteMultipart,
  s3BucketCompanions,
];
