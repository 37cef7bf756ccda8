import type { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import {
  actionPatternMatches,
  conditionValues,
  isServiceWideWildcard,
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
  description: 'IAM identity policies allow no "*" or "service:*" actions, and no NotAction (which allows everything else).',
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps: "List the actions the workload calls, e.g. s3:GetObject and s3:PutObject instead of s3:*.",
  validateResource: (args, report) =>
    eachAllow(identityDocuments(args, report), (st, at) => {
      const wild = st.actions.filter(isServiceWideWildcard);
      if (wild.length > 0) report(`${at} allows ${wild.map((a) => JSON.stringify(a)).join(", ")}; list the actions instead`);
      if (st.notActions.length > 0) report(`${at} uses NotAction with Allow, which allows every other action`);
    }),
};

export interface WildcardResourceConfig {
  allowedActions: string[];
}
/** Actions that do not support resource-level permissions and that this project's roles need. */
export const WILDCARD_RESOURCE_DEFAULTS: WildcardResourceConfig = {
  // sagemaker:ListTransformJobs: the dispatcher counts this stack's InProgress jobs (no resource type in IAM).
  allowedActions: ["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData", "sts:GetCallerIdentity", "sagemaker:ListTransformJobs"],
};

export const iamWildcardResourceAllowlist: ResourceValidationPolicy = {
  name: "iam-wildcard-resource-allowlist",
  description: 'IAM identity policies use Resource "*" only for actions on an allowlist (actions without resource-level permissions), and no NotResource.',
  enforcementLevel: "mandatory",
  severity: "high",
  configSchema: {
    properties: {
      allowedActions: {
        type: "array",
        items: { type: "string", pattern: "^[A-Za-z0-9-]+:[A-Za-z0-9]+$" },
        default: WILDCARD_RESOURCE_DEFAULTS.allowedActions,
        description: 'Exact action names (no wildcards) that may be granted on Resource "*".',
      },
    },
  },
  remediationSteps: "Scope the statement to the ARNs it needs, or move an action that supports no resource-level permissions to its own statement and add it to allowedActions.",
  validateResource: (args, report) => {
    const { allowedActions } = { ...WILDCARD_RESOURCE_DEFAULTS, ...args.getConfig<Partial<WildcardResourceConfig>>() };
    const allowed = new Set(allowedActions.map((a) => a.toLowerCase()));
    eachAllow(identityDocuments(args, report), (st, at) => {
      if (st.notResources.length > 0) report(`${at} uses NotResource with Allow, which allows every other resource`);
      if (!st.resources.includes("*")) return;
      const outside = st.actions.filter((a) => !allowed.has(a.toLowerCase()));
      if (outside.length > 0) {
        report(`${at} grants ${outside.map((a) => JSON.stringify(a)).join(", ")} on Resource "*"; allowed there: ${[...allowedActions].join(", ") || "none"}`);
      }
    });
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
const BROAD_MANAGED_POLICY = /^arn:[a-z-]+:iam::aws:policy\/(?:.+\/)?(?:[^/]*FullAccess[^/]*|AdministratorAccess[^/]*)$/;

export function isBroadManagedPolicyArn(arn: string): boolean {
  return BROAD_MANAGED_POLICY.test(arn);
}

export const iamNoManagedFullAccess: ResourceValidationPolicy = {
  name: "iam-no-aws-managed-full-access",
  description: "No AWS managed *FullAccess or AdministratorAccess policy is attached, in any partition.",
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
];
