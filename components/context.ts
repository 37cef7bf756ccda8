import type { PartitionFacts } from "./partition";

/** Where the stack deploys, as the AWS provider reports it (getPartition, getRegion, getCallerIdentity). */
export interface AwsContext {
  partition: string;
  region: string;
  accountId: string;
  facts: PartitionFacts;
}

export type Tags = Record<string, string>;
