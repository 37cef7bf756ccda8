/**
 * Every policy of the pack. Tests import this module and call the policies
 * directly; only policy/index.ts constructs the PolicyPack (which starts a
 * gRPC server and never returns).
 */
import type { Policies } from "@pulumi/policy";
import { ecrPolicies } from "./rules/ecr";
import { iamPolicies } from "./rules/iam";
import { lambdaPolicies } from "./rules/lambda";
import { messagingPolicies } from "./rules/messaging";
import { s3Policies } from "./rules/s3";
import { sagemakerPolicies } from "./rules/sagemaker";
import { servingPolicies } from "./rules/serving";
import { retentionPolicies } from "./rules/retention";
import { requiredTags } from "./rules/tags";

export const policies: Policies = [...s3Policies, ...iamPolicies, ...ecrPolicies, ...lambdaPolicies, ...messagingPolicies, ...sagemakerPolicies, ...servingPolicies, ...retentionPolicies, requiredTags];

export * from "./rules/ecr";
export * from "./rules/iam";
export * from "./rules/lambda";
export * from "./rules/messaging";
export * from "./rules/retention";
export * from "./rules/s3";
export * from "./rules/sagemaker";
export * from "./rules/serving";
export * from "./rules/tags";
