import { PolicyPack } from "@pulumi/policy";
import { policies } from "./rules";

// Starts the analyzer's gRPC server for the Pulumi engine; never returns. Import ./rules, not this file.
new PolicyPack("fuxi-aws", {
  description: "Guardrails for the FuXi SageMaker stacks (Batch Transform or async endpoint): S3, IAM, ECR, Lambda, SageMaker, autoscaling and tags.",
  enforcementLevel: "mandatory",
  policies,
});
