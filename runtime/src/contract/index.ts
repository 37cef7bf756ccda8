// The pipeline contract in code (docs/contract.md is the readable version; a test keeps both in step).
// Dependency-free (Node built-ins only), so the trigger bundle, the Pulumi program, the runtime image
// and the local tools all import the same rules.
export * from "./env-names";
export * from "./job-name";
export * from "./log-events";
export * from "./manifest";
export * from "./model";
export * from "./request";
export * from "./s3-layout";
