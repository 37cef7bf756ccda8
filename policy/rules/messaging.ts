import type { PolicyResource, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { isPublicAllow, isTlsOnlyDeny, parsePolicyDocument, PolicyDocumentError, statementLabel, type Statement } from "../lib/iam-document";
import { label, ofType, refersTo } from "../lib/links";
import { T } from "../lib/types";
import { isSet } from "../lib/values";

/*
 * SQS queues and SNS topics, written for any queue or topic of the stack (the
 * trigger's failure queue, the run queue and its dead-letter queue, the alert
 * topic): encryption at rest on the resource itself; a TLS-only statement in its
 * access policy (inline `policy`, or a QueuePolicy/TopicPolicy that replaces it).
 */

export const sqsQueueEncrypted: ResourceValidationPolicy = {
  name: "sqs-queue-encrypted",
  description: "SQS queues are encrypted at rest (SSE-SQS or a KMS key).",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps: "Set sqsManagedSseEnabled: true on the queue (S3 notifications work with SSE-SQS), or kmsMasterKeyId.",
  validateResource: (args, report) => {
    if (args.type !== T.sqsQueue) return args.notApplicable("not an SQS queue");
    if (args.props.sqsManagedSseEnabled === true || isSet(() => args.props.kmsMasterKeyId)) return;
    report(`${label(args)} is not encrypted at rest: set sqsManagedSseEnabled: true or kmsMasterKeyId`);
  },
};

export const snsTopicEncrypted: ResourceValidationPolicy = {
  name: "sns-topic-encrypted",
  description: "SNS topics are encrypted at rest with a KMS key.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    "Set kmsMasterKeyId to a customer managed key whose policy lets the publishing services (events.amazonaws.com, cloudwatch.amazonaws.com) use it; the AWS managed alias/aws/sns key does not admit them.",
  validateResource: (args, report) => {
    if (args.type !== T.snsTopic) return args.notApplicable("not an SNS topic");
    if (!isSet(() => args.props.kmsMasterKeyId)) report(`${label(args)} is not encrypted at rest: set kmsMasterKeyId`);
  },
};

interface AccessPolicy {
  service: "sqs" | "sns";
  where: string;
  doc: unknown;
}

/** The access policy a queue/topic (inline `policy`) or a QueuePolicy/TopicPolicy resource carries. */
function accessPolicyOf(type: string, name: string, props: Record<string, any>): AccessPolicy | undefined {
  switch (type) {
    case T.sqsQueuePolicy:
      return { service: "sqs", where: `${type} "${name}" policy`, doc: props.policy };
    case T.snsTopicPolicy:
      return { service: "sns", where: `${type} "${name}" policy`, doc: props.policy };
    case T.sqsQueue:
      return isSet(() => props.policy) ? { service: "sqs", where: `${type} "${name}" policy`, doc: props.policy } : undefined;
    case T.snsTopic:
      return isSet(() => props.policy) ? { service: "sns", where: `${type} "${name}" policy`, doc: props.policy } : undefined;
    default:
      return undefined;
  }
}

function read(p: AccessPolicy): Statement[] | string {
  try {
    return parsePolicyDocument(p.doc, p.where);
  } catch (e) {
    if (e instanceof PolicyDocumentError) return e.message;
    throw e;
  }
}

const TLS_EXTRA: Record<AccessPolicy["service"], string[]> = { sqs: [], sns: ["sns:Publish"] };

function tlsProblem(p: AccessPolicy): string | undefined {
  const statements = read(p);
  if (typeof statements === "string") return statements;
  return statements.some((st) => isTlsOnlyDeny(st, p.service, TLS_EXTRA[p.service]))
    ? undefined
    : `has no statement denying ${p.service}:*${p.service === "sns" ? " (or sns:Publish)" : ""} to every principal when {"Bool": {"aws:SecureTransport": "false"}}`;
}

export const messagingTlsOnly: ResourceValidationPolicy = {
  name: "sqs-sns-tls-only",
  description: "SQS queue and SNS topic access policies deny requests not made over TLS (aws:SecureTransport false).",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    'Add {Effect: "Deny", Principal: "*", Action: "sqs:*" (topics: "sns:Publish"), Resource: <queue/topic ARN>, Condition: {Bool: {"aws:SecureTransport": "false"}}}.',
  validateResource: (args, report) => {
    const p = accessPolicyOf(args.type, args.name, args.props);
    if (p === undefined) return args.notApplicable("no queue or topic access policy");
    const problem = tlsProblem(p);
    if (problem) report(`${p.where} ${problem}`);
  },
};

export const messagingPolicyPresent: StackValidationPolicy = {
  name: "sqs-sns-policy-present",
  description: "Every SQS queue and SNS topic of the stack has an access policy (inline or a QueuePolicy/TopicPolicy) that passes sqs-sns-tls-only.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps: "Add an aws.sqs.QueuePolicy (queueUrl) or aws.sns.TopicPolicy (arn) with the TLS-only deny statement.",
  validateStack: (args, report) => {
    const check = (owner: PolicyResource, policyType: string, prop: string, ids: string[]) => {
      const inline = accessPolicyOf(owner.type, owner.name, owner.props);
      const attached = ofType(args.resources, policyType).filter((p) => refersTo(p, prop, owner, ids));
      const candidates = [...(inline ? [inline] : []), ...attached.map((a) => accessPolicyOf(a.type, a.name, a.props)!)];
      if (candidates.length === 0) return report(`${label(owner)} has no access policy (a TLS-only deny statement is required)`, owner.urn);
      const problems = candidates.map(tlsProblem);
      if (problems.every((p) => p !== undefined)) report(`${label(owner)}: ${candidates.map((c, i) => `${c.where} ${problems[i]}`).join("; ")}`, owner.urn);
    };
    for (const q of ofType(args.resources, T.sqsQueue)) check(q, T.sqsQueuePolicy, "queueUrl", ["url", "id"]);
    for (const t of ofType(args.resources, T.snsTopic)) check(t, T.snsTopicPolicy, "arn", ["arn", "id"]);
  },
};

/** Resource policies (bucket, queue, topic, KMS key): who may call. */
function resourcePolicyOf(type: string, name: string, props: Record<string, any>): { where: string; doc: unknown } | undefined {
  const messaging = accessPolicyOf(type, name, props);
  if (messaging) return messaging;
  if (type === T.bucketPolicy) return { where: `${type} "${name}" policy`, doc: props.policy };
  if (type === T.kmsKey && isSet(() => props.policy)) return { where: `${type} "${name}" policy`, doc: props.policy };
  return undefined;
}

export const resourcePolicyNotPublic: ResourceValidationPolicy = {
  name: "resource-policy-not-public",
  description:
    'Bucket, queue, topic and KMS key policies grant nothing to everyone: no Allow with Principal "*" or {"AWS": "*"} unless a condition ties it to a source or account (aws:SourceArn, aws:SourceAccount, aws:PrincipalOrgID, ...).',
  enforcementLevel: "mandatory",
  severity: "critical",
  remediationSteps: 'Name the principal ({"Service": "s3.amazonaws.com"}, an account or role ARN) and add aws:SourceArn / aws:SourceAccount conditions for services.',
  validateResource: (args, report) => {
    const p = resourcePolicyOf(args.type, args.name, args.props);
    if (p === undefined) return args.notApplicable("no resource policy");
    let statements: Statement[];
    try {
      statements = parsePolicyDocument(p.doc, p.where);
    } catch (e) {
      if (!(e instanceof PolicyDocumentError)) throw e;
      return report(e.message);
    }
    for (const [i, st] of statements.entries()) {
      if (isPublicAllow(st)) report(`${p.where} ${statementLabel(st, i)} allows ${JSON.stringify(st.actions)} to every principal without a source or account condition`);
    }
  },
};

export const messagingPolicies = [sqsQueueEncrypted, snsTopicEncrypted, messagingTlsOnly, messagingPolicyPresent, resourcePolicyNotPublic];
