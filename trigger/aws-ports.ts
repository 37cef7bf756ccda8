/** The dispatcher's ports (ports.ts) on the AWS SDK v3. */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateTransformJobCommand, DescribeTransformJobCommand, ListTransformJobsCommand, paginateListTransformJobs, SageMakerClient } from "@aws-sdk/client-sagemaker";
import { ChangeMessageVisibilityCommand, GetQueueAttributesCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { JobControl, QueueControl, RunStore } from "./ports";
import { listRunFolder, objectExists, putJson } from "./s3-io";

const body = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

export function s3RunStore(s3: S3Client, bucket: string): RunStore {
  return {
    exists: (key) => objectExists(s3, bucket, key),
    listRunFolder: (folderKey) => listRunFolder(s3, bucket, folderKey),
    putJson: (key, value) => putJson(s3, bucket, key, value),
    async createJson(key, value) {
      try {
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body(value), ContentType: "application/json", IfNoneMatch: "*" }));
        return true;
      } catch (error) {
        const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
        // 412: the key exists. 409 ConditionalRequestConflict: a concurrent conditional write of the same key is under way.
        if (e.$metadata?.httpStatusCode === 412 || e.name === "PreconditionFailed" || e.$metadata?.httpStatusCode === 409) return false;
        throw error;
      }
    },
    async listKeys(prefix, max) {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: max }));
      return (page.Contents ?? []).map((o) => o.Key!).filter(Boolean);
    },
    async getJson(key) {
      try {
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return JSON.parse(await got.Body!.transformToString());
      } catch (error) {
        if ((error as { name?: string }).name === "NoSuchKey") return undefined;
        throw error;
      }
    },
  };
}

/** DescribeTransformJob's "no such job" (the API documents ResourceNotFound; some answers are ValidationException). */
function isMissingJob(error: unknown): boolean {
  const e = error as { name?: string; message?: string };
  return e.name === "ResourceNotFound" || (e.name === "ValidationException" && /could not find|not found/i.test(e.message ?? ""));
}

export function sageMakerJobControl(sageMaker: SageMakerClient): JobControl {
  return {
    async listInProgress(jobNamePrefix) {
      const names: string[] = [];
      // ListTransformJobs has no resource-level permissions; the name filter keeps other stacks out.
      for await (const page of paginateListTransformJobs({ client: sageMaker }, { StatusEquals: "InProgress", NameContains: `${jobNamePrefix}-`, MaxResults: 100 })) {
        for (const job of page.TransformJobSummaries ?? []) {
          if (job.TransformJobName?.toLowerCase().startsWith(`${jobNamePrefix.toLowerCase()}-`)) names.push(job.TransformJobName);
        }
      }
      return names;
    },
    async status(jobName) {
      try {
        return (await sageMaker.send(new DescribeTransformJobCommand({ TransformJobName: jobName }))).TransformJobStatus ?? "InProgress";
      } catch (error) {
        if (isMissingJob(error)) return undefined;
        throw error;
      }
    },
    async createdSince(jobNamePrefix, since) {
      const page = await sageMaker.send(new ListTransformJobsCommand({ CreationTimeAfter: since, NameContains: `${jobNamePrefix}-`, MaxResults: 10 }));
      return (page.TransformJobSummaries ?? []).filter((j) => j.TransformJobName?.toLowerCase().startsWith(`${jobNamePrefix.toLowerCase()}-`)).length;
    },
    async create(input) {
      await sageMaker.send(new CreateTransformJobCommand(input));
    },
  };
}

const stringAttributes = (attributes: Record<string, string>) =>
  Object.fromEntries(Object.entries(attributes).map(([name, value]) => [name, { DataType: "String", StringValue: value }]));

export function sqsQueueControl(sqs: SQSClient): QueueControl {
  return {
    async delay(queueUrl, receiptHandle, seconds) {
      await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: seconds }));
    },
    async deadLetter(queueUrl, message) {
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: message.body, MessageAttributes: stringAttributes(message.attributes) }));
    },
    async requeue(queueUrl, message, delaySeconds) {
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: message.body, MessageAttributes: stringAttributes(message.attributes), DelaySeconds: Math.min(900, delaySeconds) }));
    },
    async depth(queueUrl) {
      const got = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }));
      return Number(got.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(got.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
    },
  };
}
