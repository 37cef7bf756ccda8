import * as aws from "@pulumi/aws";
import { validateResourceOfType, type ResourceValidationPolicy, type StackValidationPolicy } from "@pulumi/policy";
import { label, ofType, refersTo } from "../lib/links";
import { T } from "../lib/types";

export const ecrImmutableTags: ResourceValidationPolicy = {
  name: "ecr-immutable-tags",
  description: "ECR repositories have immutable image tags, so a tag always names the image that was reviewed.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps: 'Set imageTagMutability: "IMMUTABLE" on the repository and push a new tag for every build.',
  validateResource: validateResourceOfType(aws.ecr.Repository, (repo, args, report) => {
    if (repo.imageTagMutability !== "IMMUTABLE") {
      report(`${label(args)} has imageTagMutability ${JSON.stringify(repo.imageTagMutability ?? "MUTABLE (default)")}, expected "IMMUTABLE"`);
    }
  }),
};

export const ecrScanOnPush: ResourceValidationPolicy = {
  name: "ecr-scan-on-push",
  description: "ECR repositories scan images on push.",
  enforcementLevel: "mandatory",
  severity: "medium",
  remediationSteps: "Set imageScanningConfiguration: { scanOnPush: true } on the repository.",
  validateResource: validateResourceOfType(aws.ecr.Repository, (repo, args, report) => {
    if (repo.imageScanningConfiguration?.scanOnPush !== true) report(`${label(args)} does not set imageScanningConfiguration.scanOnPush to true`);
  }),
};

export const ecrLifecyclePolicy: StackValidationPolicy = {
  name: "ecr-lifecycle-policy",
  description: "Every ECR repository has a lifecycle policy with at least one rule, so old images expire.",
  enforcementLevel: "mandatory",
  severity: "low",
  remediationSteps: "Add an aws.ecr.LifecyclePolicy for the repository, e.g. expiring untagged images after 14 days and keeping the newest 20 tagged ones.",
  validateStack: (args, report) => {
    const policies = ofType(args.resources, T.ecrLifecyclePolicy);
    for (const repo of ofType(args.resources, T.ecrRepository)) {
      const mine = policies.filter((p) => refersTo(p, "repository", repo, ["name", "id"]));
      if (mine.length === 0) {
        report(`${label(repo)} has no ECR LifecyclePolicy`, repo.urn);
        continue;
      }
      for (const p of mine) {
        const problem = lifecyclePolicyProblem(p.props.policy);
        if (problem) report(`${label(p)} for ${label(repo)}: ${problem}`, p.urn);
      }
    }
  },
};

function lifecyclePolicyProblem(policy: unknown): string | undefined {
  let doc: unknown = policy;
  if (typeof doc === "string") {
    try {
      doc = JSON.parse(doc);
    } catch (e) {
      return `policy is not valid JSON (${(e as Error).message})`;
    }
  }
  const rules = (doc as { rules?: unknown } | null)?.rules;
  if (!Array.isArray(rules) || rules.length === 0) return 'policy has no "rules"';
  return undefined;
}

export const ecrPolicies = [ecrImmutableTags, ecrScanOnPush, ecrLifecyclePolicy];
