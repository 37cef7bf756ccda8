import * as z from "zod/mini";
import { decodeEventKey, matchMarkerKey, uploadDiscriminator } from "../runtime/src/contract";

/** The parts of an S3 event notification record the trigger uses (other fields are ignored). */
export interface S3EventRecord {
  eventName: string;
  eventTime: string;
  s3: {
    bucket: { name: string };
    object: { key: string; size?: number; eTag?: string; versionId?: string; sequencer?: string };
  };
}
export interface S3Event {
  Records: S3EventRecord[];
}
/** Sent by S3 when a notification configuration is saved; it has no Records. */
export interface S3TestEvent {
  Service: string;
  Event: "s3:TestEvent";
  Time?: string;
  Bucket?: string;
  RequestId?: string;
  HostId?: string;
}

/** A `<inputPrefix><runId>/_SUCCESS` upload, key decoded. */
export interface Marker {
  bucket: string;
  key: string;
  runId: string;
  versionId?: string;
  sequencer?: string;
  eventName: string;
  eventTime: string;
}

export type RecordVerdict =
  | { kind: "marker"; marker: Marker }
  /** Not ours to handle; logged at info. */
  | { kind: "skip"; reason: string; key?: string }
  /** Looks like it was meant for us but cannot be used; logged at error. */
  | { kind: "invalid"; reason: string; key?: string };

const recordShape = z.object({
  eventName: z.string(),
  eventTime: z.string(),
  s3: z.object({
    bucket: z.object({ name: z.string().check(z.minLength(1)) }),
    object: z.object({
      key: z.string().check(z.minLength(1)),
      versionId: z.optional(z.string()),
      // Some S3-compatible servers send it as a number.
      sequencer: z.optional(z.union([z.string(), z.pipe(z.number(), z.transform(String))])),
    }),
  }),
});

export function isTestEvent(event: unknown): event is S3TestEvent {
  return typeof event === "object" && event !== null && (event as { Event?: unknown }).Event === "s3:TestEvent";
}

export function classifyRecord(record: unknown, dataBucket: string, inputPrefix: string): RecordVerdict {
  const parsed = recordShape.safeParse(record);
  if (!parsed.success) {
    const where = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ");
    return { kind: "invalid", reason: `malformed S3 event record (${where})` };
  }
  const { eventName, eventTime, s3 } = parsed.data;
  const rawKey = s3.object.key;
  if (!eventName.startsWith("ObjectCreated:")) return { kind: "skip", reason: `event ${eventName} is not an object creation`, key: rawKey };
  if (s3.bucket.name !== dataBucket) return { kind: "skip", reason: `bucket ${s3.bucket.name} is not the data bucket ${dataBucket}`, key: rawKey };
  let key: string;
  try {
    key = decodeEventKey(rawKey);
  } catch {
    return { kind: "invalid", reason: "object key is not valid URL encoding", key: rawKey };
  }
  const match = matchMarkerKey(key, inputPrefix);
  if ("skip" in match) return { kind: "skip", reason: match.skip, key };
  const { versionId, sequencer } = s3.object;
  if (uploadDiscriminator({ versionId, sequencer }) === undefined) return { kind: "invalid", reason: "record has neither a versionId nor a sequencer, so duplicates cannot be told apart", key };
  return {
    kind: "marker",
    marker: {
      bucket: s3.bucket.name,
      key,
      runId: match.runId,
      ...(versionId ? { versionId } : {}),
      ...(sequencer ? { sequencer } : {}),
      eventName,
      eventTime,
    },
  };
}
