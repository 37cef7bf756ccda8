import { UnknownValueError } from "@pulumi/policy";

/**
 * During `pulumi preview` the engine hands policies a proxy that throws
 * UnknownValueError when a value is not known yet (an id or ARN of a resource
 * that is still to be created). Rules that only need to know whether something
 * is set, or that can fall back to another way of linking resources, read
 * through these helpers instead of letting the whole policy turn advisory.
 */
const UNKNOWN: unique symbol = Symbol("unknown until the resource is created");
type Maybe<T> = T | typeof UNKNOWN;

function known<T>(read: () => T): Maybe<T> {
  try {
    return read();
  } catch (e) {
    if (e instanceof UnknownValueError) return UNKNOWN;
    throw e;
  }
}

/** True when the property holds a value (a non-empty string, any other non-null value, or a value not known yet). */
export function isSet(read: () => unknown): boolean {
  const v = known(read);
  if (v === UNKNOWN) return true;
  if (v === undefined || v === null) return false;
  if (typeof v === "string") return v.trim() !== "";
  return true;
}

/** A string value, or undefined when absent, not a string, or not known yet. */
export function knownString(read: () => unknown): string | undefined {
  const v = known(read);
  return typeof v === "string" ? v : undefined;
}

export function asArray<T>(v: T | T[] | undefined | null): T[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/**
 * Provider config objects (the aws provider's defaultTags, for example) reach
 * policies JSON-encoded, because the SDK serialises nested provider inputs as
 * strings. Resource inputs arrive as objects. Accept both.
 */
export function parseMaybeJson(v: unknown): unknown {
  if (typeof v !== "string") return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}
