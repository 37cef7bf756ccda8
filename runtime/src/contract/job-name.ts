// SageMaker job names and how the trigger derives one from the marker upload (docs/contract.md, "Job name").
import { createHash } from "node:crypto";

/** What tells one `_SUCCESS` upload from another (docs/contract.md, "Job name"). */
export interface MarkerIdentity {
  bucket: string;
  /** Decoded object key. */
  key: string;
  versionId?: string;
  sequencer?: string;
}

/** SageMaker's name pattern (transform jobs, models): 1-63 characters. */
export const SAGEMAKER_NAME_PATTERN = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;
export const JOB_NAME_MAX_LENGTH = 63;
/** Leaves room for "-", at least one runId character and "-<8 hex>" within 63. */
export const JOB_NAME_PREFIX_MAX_LENGTH = 40;
export const JOB_NAME_PREFIX_PATTERN = new RegExp(`^[a-zA-Z0-9][a-zA-Z0-9-]{0,${JOB_NAME_PREFIX_MAX_LENGTH - 1}}$`);
const HASH_LENGTH = 8;

/**
 * versionId when the bucket gives a real one, else the sequencer. Versioning-suspended buckets report
 * the literal version "null" for every upload, which would map re-uploads to the same job.
 */
export function uploadDiscriminator(identity: Pick<MarkerIdentity, "versionId" | "sequencer">): string | undefined {
  const { versionId, sequencer } = identity;
  if (versionId && versionId !== "null") return versionId;
  return sequencer || undefined;
}

export function identityHash(identity: MarkerIdentity): string {
  const discriminator = uploadDiscriminator(identity);
  if (discriminator === undefined) throw new Error(`marker ${identity.key} has neither versionId nor sequencer`);
  return createHash("sha256")
    .update(`${identity.bucket}\n${identity.key}\n${discriminator}`, "utf8")
    .digest("hex")
    .slice(0, HASH_LENGTH);
}

/**
 * runId reduced to what a SageMaker name allows: each run of characters outside [a-zA-Z0-9] becomes one
 * "-", dashes at either end are dropped, and the result is cut to `maxLength` (without a trailing dash).
 */
export function sanitiseRunId(runId: string, maxLength: number): string {
  const dashed = runId.replace(/[^a-zA-Z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  return dashed.slice(0, Math.max(0, maxLength)).replace(/-+$/, "");
}

/**
 * `<jobPrefix>-<sanitised runId>-<8 hex>`, at most 63 characters. When nothing of the runId survives
 * sanitising (e.g. a runId of CJK characters only), the middle part and its dash are left out.
 */
export function transformJobName(jobPrefix: string, runId: string, identity: MarkerIdentity): string {
  const hash = identityHash(identity);
  const room = JOB_NAME_MAX_LENGTH - jobPrefix.length - HASH_LENGTH - 2;
  const middle = sanitiseRunId(runId, room);
  return middle ? `${jobPrefix}-${middle}-${hash}` : `${jobPrefix}-${hash}`;
}
