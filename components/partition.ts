/**
 * Everything that differs between AWS partitions, in one explicit table.
 * ARNs are always built from the partition reported by `aws.getPartition()`;
 * this table only adds what that invoke does not return (service principals,
 * the Deep Learning Containers account).
 */
export type PartitionId = "aws" | "aws-cn";

export interface PartitionFacts {
  partition: PartitionId;
  dnsSuffix: string;
  /** Service principals used in trust and resource policies. */
  principals: {
    lambda: string;
    sagemaker: string;
    /**
     * S3 invoking Lambda: `s3.amazonaws.com` in China too. The `.com.cn` form is
     * rejected by lambda:AddPermission there ("The provided principal was
     * invalid"; docs.amazonaws.cn/lambda/latest/dg/with-s3-example.html uses
     * `s3.amazonaws.com`).
     */
    s3: string;
    events: string;
    cloudwatch: string;
  };
  /** Account that publishes AWS Deep Learning Containers in this partition's regions. */
  deepLearningContainersAccount: string;
}

const TABLE: Record<PartitionId, PartitionFacts> = {
  aws: {
    partition: "aws",
    dnsSuffix: "amazonaws.com",
    principals: {
      lambda: "lambda.amazonaws.com",
      sagemaker: "sagemaker.amazonaws.com",
      s3: "s3.amazonaws.com",
      events: "events.amazonaws.com",
      cloudwatch: "cloudwatch.amazonaws.com",
    },
    deepLearningContainersAccount: "763104351884",
  },
  "aws-cn": {
    partition: "aws-cn",
    dnsSuffix: "amazonaws.com.cn",
    principals: {
      lambda: "lambda.amazonaws.com",
      sagemaker: "sagemaker.amazonaws.com",
      s3: "s3.amazonaws.com",
      events: "events.amazonaws.com",
      cloudwatch: "cloudwatch.amazonaws.com",
    },
    deepLearningContainersAccount: "727897471807",
  },
};

/** Partition of a region name, the same rule the AWS SDKs use for these two partitions. */
export function partitionOfRegion(region: string): PartitionId {
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) {
    throw new Error(`aws:region: ${JSON.stringify(region)} is not an AWS region name; expected e.g. cn-northwest-1 or us-east-1`);
  }
  if (region.startsWith("us-gov-") || region.startsWith("us-iso")) {
    throw new Error(`aws:region: ${JSON.stringify(region)} is in a partition this project does not support; expected an aws or aws-cn region`);
  }
  return region.startsWith("cn-") ? "aws-cn" : "aws";
}

export function partitionFacts(partition: string): PartitionFacts {
  if (partition !== "aws" && partition !== "aws-cn") {
    throw new Error(`unsupported AWS partition ${JSON.stringify(partition)}; expected "aws" or "aws-cn"`);
  }
  return TABLE[partition];
}

/** Region-scoped ARN: arn:<partition>:<service>:<region>:<account>:<resource>. */
export function arn(p: { partition: string; region: string; accountId: string }, service: string, resource: string): string {
  return `arn:${p.partition}:${service}:${p.region}:${p.accountId}:${resource}`;
}

/** S3 ARNs have no region or account: arn:<partition>:s3:::<bucket>[/<key pattern>]. */
export function s3Arn(partition: string, bucket: string, keyPattern?: string): string {
  return keyPattern === undefined ? `arn:${partition}:s3:::${bucket}` : `arn:${partition}:s3:::${bucket}/${keyPattern}`;
}
