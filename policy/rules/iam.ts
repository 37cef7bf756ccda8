import type { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import {
  actionPatternMatches,
  conditionValues,
  hasActionWildcard,
  isBroadResource,
  isEveryonePrincipal,
  parsePolicyDocument,
  PolicyDocumentError,
  statementLabel,
  type Statement,
} from "../lib/iam-document";
import { T } from "../lib/types";
import { asArray, knownString } from "../lib/values";

interface Document {
  where: string;
  statements: Statement[];
}

/**
 * Identity policies a resource carries: the `policy` of Policy/RolePolicy/
 * UserPolicy/GroupPolicy and a Role's inline policies. Trust policies
 * (assumeRolePolicy) and resource policies (bucket policies) are not identity
 * policies and are not checked here. A document that cannot be read is itself
 * reported, naming the resource and the fault.
 */
function identityDocuments(args: ResourceValidationArgs, report: ReportViolation): Document[] {
  const raw: { where: string; doc: unknown }[] = [];
  switch (args.type) {
    case T.iamPolicy:
    case T.iamRolePolicy:
    case T.iamUserPolicy:
    case T.iamGroupPolicy:
      raw.push({ where: `${args.type} "${args.name}" policy`, doc: args.props.policy });
      break;
    case T.iamRole:
      for (const [i, p] of asArray(args.props.inlinePolicies as Record<string, unknown>[] | undefined).entries()) {
        const name = knownString(() => p.name) ?? String(i);
        raw.push({ where: `${args.type} "${args.name}" inlinePolicies[${name}]`, doc: p.policy });
      }
      break;
    default:
      args.notApplicable(`${args.type} carries no identity policy`);
  }
  const docs: Document[] = [];
  for (const { where, doc } of raw) {
    try {
      docs.push({ where, statements: parsePolicyDocument(doc, where) });
    } catch (e) {
      if (!(e instanceof PolicyDocumentError)) throw e;
      report(e.message);
    }
  }
  return docs;
}

function eachAllow(docs: Document[], visit: (st: Statement, at: string) => void): void {
  for (const doc of docs) {
    for (const [i, st] of doc.statements.entries()) {
      if (st.effect === "Allow") visit(st, `${doc.where} ${statementLabel(st, i)}`);
    }
  }
}

export const iamNoWildcardActions: ResourceValidationPolicy = {
  name: "iam-no-wildcard-actions",
  description:
    'IAM identity policies allow no wildcard actions ("*", "s3:*", or partial ones such as "s3:Get*" and "sagemaker:*Transform*"), and no NotAction (which allows everything else).',
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps: "List the actions the workload calls, e.g. s3:GetObject and s3:PutObject instead of s3:Get* or s3:*.",
  validateResource: (args, report) =>
    eachAllow(identityDocuments(args, report), (st, at) => {
      const wild = st.actions.filter(hasActionWildcard);
      if (wild.length > 0) report(`${at} allows ${wild.map((a) => JSON.stringify(a)).join(", ")}; list the actions instead`);
      if (st.notActions.length > 0) report(`${at} uses NotAction with Allow, which allows every other action`);
    }),
};

export interface WildcardResourceConfig {
  /** Extra exact action names accepted on a broad resource, on top of RESOURCE_WILDCARD_ALLOWLIST. */
  allowedActions: string[];
}

/**
 * Actions that have no resource-level permissions (the Service Authorization
 * Reference lists no resource type for them), so AWS only accepts Resource "*".
 * Each entry says why the project needs it; nothing else may use a broad resource.
 */
export const RESOURCE_WILDCARD_ALLOWLIST: Readonly<Record<string, string>> = {
  "ecr:GetAuthorizationToken": "registry login of the SageMaker execution role; no resource type",
  "cloudwatch:PutMetricData": "transform job metrics; no resource type (scoped by a cloudwatch:namespace condition)",
  "sts:GetCallerIdentity": "identity check; no resource type and grants nothing",
  "sagemaker:ListTransformJobs": "admission control of the dispatcher counts running jobs; List* calls have no resource type",
};

export const WILDCARD_RESOURCE_DEFAULTS: WildcardResourceConfig = { allowedActions: [] };

export const iamWildcardResourceAllowlist: ResourceValidationPolicy = {
  name: "iam-wildcard-resource-allowlist",
  description:
    'IAM identity policies grant a broad resource ("*", an ARN with a wildcard account/region/partition, arn:<partition>:s3:::*, type/*) only for actions without resource-level permissions on the reasoned allow-list, and use no NotResource.',
  enforcementLevel: "mandatory",
  severity: "high",
  configSchema: {
    properties: {
      allowedActions: {
        type: "array",
        items: { type: "string", pattern: "^[A-Za-z0-9-]+:[A-Za-z0-9]+$" },
        default: WILDCARD_RESOURCE_DEFAULTS.allowedActions,
        description: 'Extra exact action names (no wildcards) that may be granted on a broad resource, on top of the built-in allow-list.',
      },
    },
  },
  remediationSteps:
    "Scope the statement to the ARNs it needs (a named bucket and key prefix, a named job prefix), or move an action without resource-level permissions to its own statement; extend allowedActions only for such actions.",
  validateResource: (args, report) => {
    const { allowedActions } = { ...WILDCARD_RESOURCE_DEFAULTS, ...args.getConfig<Partial<WildcardResourceConfig>>() };
    const allowed = new Set([...Object.keys(RESOURCE_WILDCARD_ALLOWLIST), ...allowedActions].map((a) => a.toLowerCase()));
    eachAllow(identityDocuments(args, report), (st, at) => {
      if (st.notResources.length > 0) report(`${at} uses NotResource with Allow, which allows every other resource`);
      const broad = st.resources.filter(isBroadResource);
      if (broad.length === 0) return;
      const outside = st.actions.filter((a) => !allowed.has(a.toLowerCase()));
      if (outside.length > 0) {
        report(
          `${at} grants ${outside.map((a) => JSON.stringify(a)).join(", ")} on ${broad.map((r) => JSON.stringify(r)).join(", ")}, which names no resource; ` +
            `only actions without resource-level permissions may (${[...allowed].join(", ")})`,
        );
      }
    });
  },
};

/** Object writes and deletes: on `bucket/*` they can overwrite or remove anything, including run inputs (which re-triggers runs). */
const S3_OBJECT_WRITES = ["s3:putobject", "s3:putobjectacl", "s3:putobjecttagging", "s3:deleteobject", "s3:deleteobjectversion", "s3:abortmultipartupload", "s3:restoreobject", "s3:putobjectretention", "s3:putobjectlegalhold"];

export const iamS3WritesScoped: ResourceValidationPolicy = {
  name: "iam-s3-writes-scoped",
  description: "IAM identity policies allow S3 object writes and deletes only under named key prefixes (bucket/prefix/...), never on a whole bucket (bucket/*).",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps: "Grant s3:PutObject on the prefixes the code writes, e.g. arn:aws-cn:s3:::bucket/requests/* and arn:aws-cn:s3:::bucket/output/*/_FAILED.json.",
  validateResource: (args, report) =>
    eachAllow(identityDocuments(args, report), (st, at) => {
      const writes = st.actions.filter((a) => S3_OBJECT_WRITES.some((w) => actionPatternMatches(a, w)));
      if (writes.length === 0) return;
      const whole = st.resources.filter((r) => /^arn:[^:]*:s3:::[^/]+\/[*?]/.test(r));
      if (whole.length > 0) report(`${at} allows ${writes.map((a) => JSON.stringify(a)).join(", ")} on ${whole.map((r) => JSON.stringify(r)).join(", ")}, every object of the bucket; name the key prefixes instead`);
    }),
};

export const iamTrustPolicyNotPublic: ResourceValidationPolicy = {
  name: "iam-trust-policy-not-public",
  description: 'IAM role trust policies name who may assume the role: no Principal "*" or {"AWS": "*"} in an Allow statement.',
  enforcementLevel: "mandatory",
  severity: "critical",
  remediationSteps: 'Trust the service that runs the workload, e.g. {"Service": "lambda.amazonaws.com"}, or named accounts and roles.',
  validateResource: (args, report) => {
    if (args.type !== T.iamRole) return args.notApplicable("not an IAM role");
    const where = `${args.type} "${args.name}" assumeRolePolicy`;
    let statements: Statement[];
    try {
      statements = parsePolicyDocument(args.props.assumeRolePolicy, where);
    } catch (e) {
      if (!(e instanceof PolicyDocumentError)) throw e;
      return report(e.message);
    }
    for (const [i, st] of statements.entries()) {
      if (st.effect === "Allow" && isEveryonePrincipal(st.principal)) report(`${where} ${statementLabel(st, i)} lets every AWS principal assume the role (${JSON.stringify(st.principal)})`);
    }
  },
};

export const iamPassRoleRequiresService: ResourceValidationPolicy = {
  name: "iam-passrole-requires-service-condition",
  description: "Statements that allow iam:PassRole restrict the receiving service with an iam:PassedToService condition.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps: 'Add Condition {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}} to the statement.',
  validateResource: (args, report) =>
    eachAllow(identityDocuments(args, report), (st, at) => {
      if (!st.actions.some((a) => actionPatternMatches(a, "iam:PassRole"))) return;
      const conditions = conditionValues(st, "iam:PassedToService");
      if (conditions.length === 0) {
        report(`${at} allows iam:PassRole without an iam:PassedToService condition`);
      } else if (conditions.some((c) => c.values.length === 0 || c.values.some((v) => /^\*+$/.test(v)))) {
        report(`${at} allows iam:PassRole with an iam:PassedToService condition that matches every service`);
      }
    }),
};

/** AWS managed policies live under account "aws" in every partition (arn:aws:, arn:aws-cn:, arn:aws-us-gov:). */
const BROAD_MANAGED_POLICY = /^arn:[a-z-]+:iam::aws:policy\/(?:.+\/)?(?:[^/]*FullAccess[^/]*|AdministratorAccess[^/]*|PowerUserAccess)$/;

export function isBroadManagedPolicyArn(arn: string): boolean {
  return BROAD_MANAGED_POLICY.test(arn);
}

export const iamNoManagedFullAccess: ResourceValidationPolicy = {
  name: "iam-no-broad-managed-policy",
  description: "No AWS managed *FullAccess, AdministratorAccess or PowerUserAccess policy is attached to any role, user or group, in any partition.",
  enforcementLevel: "mandatory",
  severity: "critical",
  remediationSteps: "Replace the managed policy with an inline or customer managed policy that lists the actions and resources the workload needs.",
  validateResource: (args, report) => {
    const arns: { where: string; arn: unknown }[] = [];
    switch (args.type) {
      case T.iamRolePolicyAttachment:
      case T.iamUserPolicyAttachment:
      case T.iamGroupPolicyAttachment:
      case T.iamPolicyAttachment:
        arns.push({ where: "policyArn", arn: args.props.policyArn });
        break;
      case T.iamRole:
        for (const [i, a] of asArray(args.props.managedPolicyArns as unknown[] | undefined).entries()) arns.push({ where: `managedPolicyArns[${i}]`, arn: a });
        break;
      case T.iamRolePolicyAttachmentsExclusive:
        for (const [i, a] of asArray(args.props.policyArns as unknown[] | undefined).entries()) arns.push({ where: `policyArns[${i}]`, arn: a });
        break;
      default:
        args.notApplicable(`${args.type} attaches no managed policy`);
    }
    for (const { where, arn } of arns) {
      if (typeof arn === "string" && isBroadManagedPolicyArn(arn)) {
        report(`${args.type} "${args.name}" ${where} attaches the AWS managed policy ${arn}`);
      }
    }
  },
};

export const iamPolicies: ResourceValidationPolicy[] = [
  iamNoWildcardActions,
  iamWildcardResourceAllowlist,
  iamPassRoleRequiresService,
  iamNoManagedFullAccess,
  iamS3WritesScoped,
  iamTrustPolicyNotPublic,
];
