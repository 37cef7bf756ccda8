import { PolicyPack } from "@pulumi/policy";
import { policies } from "./rules";

// Starts the analyzer's gRPC server for the Pulumi engine; never returns. Import ./rules, not this file.
new PolicyPack("fuxi-aws", {
  description: "Guardrails for the FuXi SageMaker Batch Transform stacks: S3, IAM, ECR, Lambda, SageMaker and tags.",
  enforcementLevel: "mandatory",
  policies,
});
