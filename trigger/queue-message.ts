/**
 * What a run-queue message carries: an S3 event notification (S3 → the operational queue; the body is
 * the same JSON Lambda would get), S3's test event, or a backfill run enqueued by `npm run campaign`.
 */
import * as z from "zod/mini";
import type { Marker } from "./event";

export type Lane = "operational" | "backfill";

export const BACKFILL_MESSAGE_KIND = "fuxi.backfill-run";

/** Body of a campaign message (version 1). */
export interface BackfillRunMessage {
  kind: typeof BACKFILL_MESSAGE_KIND;
  version: 1;
  campaign: string;
  marker: { bucket: string; key: string; versionId?: string; sequencer?: string; eventTime: string };
}

const backfillShape = z.object({
  kind: z.literal(BACKFILL_MESSAGE_KIND),
  version: z.literal(1),
  campaign: z.string(),
  marker: z.object({
    bucket: z.string().check(z.minLength(1)),
    key: z.string().check(z.minLength(1)),
    versionId: z.optional(z.string()),
    sequencer: z.optional(z.string()),
    eventTime: z.string(),
  }),
});

import { CAMPAIGN_EVENT_NAME } from "../runtime/src/contract";
export { CAMPAIGN_EVENT_NAME };

export type ParsedBody =
  | { kind: "s3"; records: unknown[] }
  | { kind: "test-event" }
  | { kind: "backfill"; message: BackfillRunMessage }
  | { kind: "invalid"; reason: string };

export function parseQueueBody(body: string): ParsedBody {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { kind: "invalid", reason: "message body is not JSON" };
  }
  if (typeof value !== "object" || value === null) return { kind: "invalid", reason: "message body is not a JSON object" };
  const o = value as Record<string, unknown>;
  if (o.Event === "s3:TestEvent") return { kind: "test-event" };
  if (Array.isArray(o.Records)) return { kind: "s3", records: o.Records };
  if (o.kind === BACKFILL_MESSAGE_KIND) {
    const parsed = backfillShape.safeParse(value);
    if (!parsed.success) return { kind: "invalid", reason: `malformed backfill message (${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")})` };
    return { kind: "backfill", message: parsed.data as BackfillRunMessage };
  }
  return { kind: "invalid", reason: "message is neither an S3 event notification nor a backfill run" };
}

/** A campaign message as the marker it stands for (the same job name as the S3 event on versioned buckets). */
export function backfillMarker(message: BackfillRunMessage, runId: string): Marker {
  const { bucket, key, versionId, sequencer, eventTime } = message.marker;
  return { bucket, key, runId, ...(versionId ? { versionId } : {}), ...(sequencer ? { sequencer } : {}), eventName: CAMPAIGN_EVENT_NAME, eventTime };
}
