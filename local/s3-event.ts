/**
 * Turns s3rver's object-created records into S3 event notifications as AWS delivers them to
 * Lambda: only for the configured event type and prefix/suffix filter, with the key URL-encoded
 * and the bucket ARN in the region's partition. Pure.
 */
import { partitionOfRegion } from "../components/partition";
import { encodeEventKey } from "../runtime/src/contract";
import type { S3rverEventRecord } from "../tools/local-s3";

/** One LambdaFunctionConfiguration of the bucket's notification configuration. */
export interface NotificationRule {
  configurationId: string;
  /** Filter rule `prefix` ("" = any). */
  prefix: string;
  /** Filter rule `suffix` ("" = any). */
  suffix: string;
  /** Event types, e.g. ["s3:ObjectCreated:*"]. */
  events: string[];
}

export interface S3EventRecord {
  eventVersion: "2.1";
  eventSource: "aws:s3";
  awsRegion: string;
  eventTime: string;
  eventName: string;
  userIdentity: { principalId: string };
  requestParameters: { sourceIPAddress: string };
  responseElements: { "x-amz-request-id": string; "x-amz-id-2": string };
  s3: {
    s3SchemaVersion: "1.0";
    configurationId: string;
    bucket: { name: string; ownerIdentity: { principalId: string }; arn: string };
    object: { key: string; size: number; eTag: string; versionId?: string; sequencer: string };
  };
}

export interface S3Event {
  Records: S3EventRecord[];
}

/** True when a rule's event types include this event name ("s3:ObjectCreated:*" matches "ObjectCreated:Put"). */
export function eventTypeMatches(ruleEvents: string[], eventName: string): boolean {
  const type = `s3:${eventName}`;
  return ruleEvents.some((pattern) => (pattern.endsWith(":*") ? type.startsWith(pattern.slice(0, -1)) : pattern === type));
}

/** S3 matches filter rules against the object key as stored (not URL-encoded), case-sensitively. */
export function keyMatchesRule(key: string, rule: Pick<NotificationRule, "prefix" | "suffix">): boolean {
  return key.startsWith(rule.prefix) && key.endsWith(rule.suffix);
}

export interface ShapeOptions {
  region: string;
  /** The bucket whose notification configuration holds `rule`; records for other buckets are dropped. */
  bucket: string;
  rule: NotificationRule;
  /** Bucket owner's canonical-ish id; any stable string. */
  ownerId?: string;
  sourceIp?: string;
  now?: Date;
}

/**
 * The event AWS would deliver for this record under `rule`, or undefined when the rule does
 * not match (other event type, key outside the prefix/suffix).
 */
export function shapeS3Event(record: S3rverEventRecord, options: ShapeOptions): S3Event | undefined {
  const key = record.s3.object.key;
  if (record.s3.bucket.name !== options.bucket) return undefined;
  if (!eventTypeMatches(options.rule.events, record.eventName) || !keyMatchesRule(key, options.rule)) return undefined;
  const partition = partitionOfRegion(options.region);
  const ownerId = options.ownerId ?? "A3NL1KOZZKExample";
  const object: S3EventRecord["s3"]["object"] = {
    key: encodeEventKey(key),
    size: record.s3.object.size,
    eTag: record.s3.object.eTag,
    sequencer: record.s3.object.sequencer,
  };
  if (record.s3.object.versionId !== undefined) object.versionId = record.s3.object.versionId;
  return {
    Records: [
      {
        eventVersion: "2.1",
        eventSource: "aws:s3",
        awsRegion: options.region,
        eventTime: (options.now ?? new Date()).toISOString(),
        eventName: record.eventName,
        userIdentity: { principalId: `AWS:${ownerId}` },
        requestParameters: { sourceIPAddress: options.sourceIp ?? "127.0.0.1" },
        responseElements: { "x-amz-request-id": record.s3.object.sequencer, "x-amz-id-2": "local" },
        s3: {
          s3SchemaVersion: "1.0",
          configurationId: options.rule.configurationId,
          bucket: { name: record.s3.bucket.name, ownerIdentity: { principalId: ownerId }, arn: `arn:${partition}:s3:::${record.s3.bucket.name}` },
          object,
        },
      },
    ],
  };
}
