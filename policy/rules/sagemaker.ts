import * as aws from "@pulumi/aws";
import { validateResourceOfType, type PolicyResource, type ResourceValidationPolicy, type StackValidationPolicy } from "@pulumi/policy";
import { isServiceWideWildcard, parsePolicyDocument, PolicyDocumentError } from "../lib/iam-document";
import { label, ofType, refersTo } from "../lib/links";
import { T } from "../lib/types";
import { asArray, knownString } from "../lib/values";

const DIGEST_REFERENCE = /@sha256:[0-9a-f]{64}$/;

export const sagemakerImageByDigest: ResourceValidationPolicy = {
  name: "sagemaker-image-by-digest",
  description: "SageMaker models reference their container image by digest (@sha256:...), never by a tag that can move.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps: "Use the pushed image's digest reference (repository@sha256:<digest>) as primaryContainer.image.",
  validateResource: validateResourceOfType(aws.sagemaker.Model, (model, args, report) => {
    const images = [
      { where: "primaryContainer.image", image: model.primaryContainer?.image },
      ...asArray(model.containers).map((c, i) => ({ where: `containers[${i}].image`, image: c.image })),
    ];
    const present = images.filter((i) => i.image !== undefined);
    if (present.length === 0) report(`${label(args)} names no container image`);
    for (const { where, image } of present) {
      if (!DIGEST_REFERENCE.test(image!)) report(`${label(args)} ${where} ${JSON.stringify(image)} is not a digest reference (…@sha256:<64 hex>)`);
    }
  }),
};

export interface InstanceTypeConfig {
  allowedInstanceTypes: string[];
}
/** GPU instance types with at least 16 GB of GPU memory (FuXi loads one stage at a time into 16-24 GB cards). */
export const INSTANCE_TYPE_DEFAULTS: InstanceTypeConfig = {
  allowedInstanceTypes: [
    ...["xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"].map((s) => `ml.g4dn.${s}`),
    ...["xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge"].map((s) => `ml.g5.${s}`),
    ...["xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge"].map((s) => `ml.g6.${s}`),
    ...["2xlarge", "8xlarge", "16xlarge"].map((s) => `ml.p3.${s}`),
  ],
};

/** docs/contract.md: the trigger Lambda starts the transform jobs with this instance type. */
export const TRANSFORM_INSTANCE_TYPE_VARIABLE = "TRANSFORM_INSTANCE_TYPE";

export const sagemakerTransformGpuInstance: ResourceValidationPolicy = {
  name: "sagemaker-transform-gpu-instance",
  description: `Batch Transform jobs run on an allowed GPU instance type (the trigger Lambda's ${TRANSFORM_INSTANCE_TYPE_VARIABLE}).`,
  enforcementLevel: "mandatory",
  severity: "medium",
  configSchema: {
    properties: {
      allowedInstanceTypes: {
        type: "array",
        items: { type: "string", pattern: "^ml\\.[a-z0-9]+\\.[a-z0-9]+$" },
        default: INSTANCE_TYPE_DEFAULTS.allowedInstanceTypes,
        description: "SageMaker instance types a transform job may use.",
      },
    },
  },
  remediationSteps: "Set the stack's transform instance type to one of allowedInstanceTypes, or extend the list in the policy config.",
  validateResource: validateResourceOfType(aws.lambda.Function, (fn, args, report) => {
    const variables = fn.environment?.variables;
    if (variables === undefined || !(TRANSFORM_INSTANCE_TYPE_VARIABLE in variables)) {
      return args.notApplicable(`no ${TRANSFORM_INSTANCE_TYPE_VARIABLE} in the environment`);
    }
    const { allowedInstanceTypes } = { ...INSTANCE_TYPE_DEFAULTS, ...args.getConfig<Partial<InstanceTypeConfig>>() };
    const type = variables[TRANSFORM_INSTANCE_TYPE_VARIABLE];
    if (!allowedInstanceTypes.includes(type)) {
      report(`${label(args)} ${TRANSFORM_INSTANCE_TYPE_VARIABLE} is ${JSON.stringify(type)}, not an allowed GPU instance type (${allowedInstanceTypes.join(", ")})`);
    }
  }),
};

/** Managed policies that make a role an administrator (or let it make itself one). */
const ADMIN_MANAGED_POLICY = /^arn:[a-z-]+:iam::aws:policy\/(?:AdministratorAccess|PowerUserAccess|IAMFullAccess)$/;

export interface ExecutionRoleConfig {
  allowExternalRoles: boolean;
}
export const EXECUTION_ROLE_DEFAULTS: ExecutionRoleConfig = { allowExternalRoles: false };

export const sagemakerExecutionRoleNotAdmin: StackValidationPolicy = {
  name: "sagemaker-execution-role-not-admin",
  description:
    "SageMaker models run under a role created by this stack that has no administrator access: no AdministratorAccess, PowerUserAccess or IAMFullAccess, and no \"*\" or \"iam:*\" grant on every resource.",
  enforcementLevel: "mandatory",
  severity: "critical",
  configSchema: {
    properties: {
      allowExternalRoles: {
        type: "boolean",
        default: EXECUTION_ROLE_DEFAULTS.allowExternalRoles,
        description: "Accept execution roles not created by this stack (the pack cannot inspect them).",
      },
    },
  },
  remediationSteps: "Give the model a dedicated role with only the S3, ECR and CloudWatch permissions the container uses.",
  validateStack: (args, report) => {
    const { allowExternalRoles } = { ...EXECUTION_ROLE_DEFAULTS, ...args.getConfig<Partial<ExecutionRoleConfig>>() };
    const roles = ofType(args.resources, T.iamRole);
    for (const model of ofType(args.resources, T.sagemakerModel)) {
      const role = roles.find((r) => refersTo(model, "executionRoleArn", r, ["arn"]));
      if (role === undefined) {
        if (!allowExternalRoles) {
          const arn = knownString(() => model.props.executionRoleArn) ?? "(unknown)";
          report(`${label(model)} runs under ${arn}, which is not a role created by this stack, so it cannot be checked (set allowExternalRoles to accept it)`, model.urn);
        }
        continue;
      }
      for (const reason of adminReasons(role, args.resources)) report(`${label(model)} runs under ${label(role)}, which ${reason}`, model.urn);
    }
  },
};

function adminReasons(role: PolicyResource, resources: PolicyResource[]): string[] {
  const reasons: string[] = [];
  const roleIds = ["name", "id"];
  const managed = [
    ...asArray(role.props.managedPolicyArns as unknown[] | undefined),
    ...ofType(resources, T.iamRolePolicyAttachment)
      .filter((a) => refersTo(a, "role", role, roleIds))
      .map((a) => a.props.policyArn as unknown),
  ];
  for (const arn of managed) {
    if (typeof arn === "string" && ADMIN_MANAGED_POLICY.test(arn)) reasons.push(`has ${arn} attached`);
  }
  const documents: { where: string; doc: unknown }[] = [
    ...asArray(role.props.inlinePolicies as Record<string, unknown>[] | undefined).map((p, i) => ({ where: `inline policy ${i}`, doc: p.policy })),
    ...ofType(resources, T.iamRolePolicy)
      .filter((p) => refersTo(p, "role", role, roleIds))
      .map((p) => ({ where: label(p), doc: p.props.policy })),
  ];
  // Customer managed policies from this stack attached to the role.
  const customerPolicies = ofType(resources, T.iamPolicy);
  for (const a of ofType(resources, T.iamRolePolicyAttachment).filter((x) => refersTo(x, "role", role, roleIds))) {
    for (const p of customerPolicies.filter((cp) => refersTo(a, "policyArn", cp, ["arn"]))) documents.push({ where: label(p), doc: p.props.policy });
  }
  for (const { where, doc } of documents) {
    try {
      for (const st of parsePolicyDocument(doc, where)) {
        const everything = st.resources.includes("*") || st.notResources.length > 0;
        const adminAction = st.notActions.length > 0 || st.actions.some((a) => isServiceWideWildcard(a) && /^(\*+|\*+:\*+|iam:\*+)$/i.test(a));
        if (st.effect === "Allow" && everything && adminAction) reasons.push(`is granted ${JSON.stringify(st.actions.length ? st.actions : st.notActions)} on every resource by ${where}`);
      }
    } catch (e) {
      if (!(e instanceof PolicyDocumentError)) throw e;
      reasons.push(`has a policy that cannot be read: ${e.message}`);
    }
  }
  return reasons;
}

export const sagemakerPolicies = [sagemakerImageByDigest, sagemakerTransformGpuInstance, sagemakerExecutionRoleNotAdmin];
