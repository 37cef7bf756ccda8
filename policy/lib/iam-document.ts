/**
 * IAM policy documents as the rules need them: parsed from the JSON string or
 * object a resource carries, statements normalised to arrays. AWS's own
 * evaluation logic is not available as a library, so the few matching rules
 * used here (case-insensitive action names, `*` and `?` wildcards) are written
 * out by hand.
 */
import { asArray } from "./values";

export interface Statement {
  sid?: string;
  effect: "Allow" | "Deny";
  actions: string[];
  notActions: string[];
  resources: string[];
  notResources: string[];
  /** As written (resource policies only): "*", {"AWS": ...}, {"Service": ...}. */
  principal?: unknown;
  /** operator → condition key (as written) → values */
  conditions: Record<string, Record<string, string[]>>;
}

export class PolicyDocumentError extends Error {}

export function parsePolicyDocument(document: unknown, where: string): Statement[] {
  let doc: unknown = document;
  if (typeof doc === "string") {
    try {
      doc = JSON.parse(doc);
    } catch (e) {
      throw new PolicyDocumentError(`${where}: policy document is not valid JSON (${(e as Error).message})`);
    }
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new PolicyDocumentError(`${where}: policy document must be a JSON object, got ${describe(doc)}`);
  }
  const raw = (doc as Record<string, unknown>).Statement;
  if (raw === undefined) throw new PolicyDocumentError(`${where}: policy document has no Statement`);
  return asArray(raw as unknown).map((s, i) => parseStatement(s, `${where}: Statement[${i}]`));
}

function parseStatement(s: unknown, where: string): Statement {
  if (typeof s !== "object" || s === null || Array.isArray(s)) {
    throw new PolicyDocumentError(`${where} must be an object, got ${describe(s)}`);
  }
  const st = s as Record<string, unknown>;
  if (st.Effect !== "Allow" && st.Effect !== "Deny") {
    throw new PolicyDocumentError(`${where}: Effect must be "Allow" or "Deny", got ${describe(st.Effect)}`);
  }
  const conditions: Statement["conditions"] = {};
  if (st.Condition !== undefined) {
    if (typeof st.Condition !== "object" || st.Condition === null || Array.isArray(st.Condition)) {
      throw new PolicyDocumentError(`${where}: Condition must be an object, got ${describe(st.Condition)}`);
    }
    for (const [op, block] of Object.entries(st.Condition as Record<string, unknown>)) {
      if (typeof block !== "object" || block === null || Array.isArray(block)) {
        throw new PolicyDocumentError(`${where}: Condition.${op} must be an object, got ${describe(block)}`);
      }
      conditions[op] = {};
      for (const [key, values] of Object.entries(block as Record<string, unknown>)) {
        conditions[op][key] = asArray(values as unknown).map(String);
      }
    }
  }
  return {
    sid: typeof st.Sid === "string" ? st.Sid : undefined,
    effect: st.Effect,
    actions: strings(st.Action, `${where}: Action`),
    notActions: strings(st.NotAction, `${where}: NotAction`),
    resources: strings(st.Resource, `${where}: Resource`),
    notResources: strings(st.NotResource, `${where}: NotResource`),
    principal: st.Principal,
    conditions,
  };
}

function strings(v: unknown, where: string): string[] {
  const list = asArray(v as unknown);
  for (const item of list) {
    if (typeof item !== "string") throw new PolicyDocumentError(`${where} must hold strings, got ${describe(item)}`);
  }
  return list as string[];
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  const json = JSON.stringify(v);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

export function statementLabel(st: Statement, index: number): string {
  return st.sid ? `statement ${index} (Sid ${st.sid})` : `statement ${index}`;
}

/** IAM action matching: case-insensitive, `*` any run of characters, `?` one character. */
export function actionPatternMatches(pattern: string, action: string): boolean {
  const re = new RegExp(
    "^" + pattern.split("").map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&"))).join("") + "$",
    "i",
  );
  return re.test(action);
}

/** `*`, `*:*` and `service:*`: every action, or every action of a service. */
export function isServiceWideWildcard(action: string): boolean {
  const [service, name] = action.split(":", 2);
  if (name === undefined) return /^\*+$/.test(service);
  return /^\*+$/.test(service) || /^\*+$/.test(name);
}

/** Condition key lookup is case-insensitive in IAM; operators may carry ForAnyValue:/ForAllValues: and IfExists. */
export function conditionValues(st: Statement, key: string): { operator: string; values: string[] }[] {
  const found: { operator: string; values: string[] }[] = [];
  for (const [operator, block] of Object.entries(st.conditions)) {
    for (const [k, values] of Object.entries(block)) {
      if (k.toLowerCase() === key.toLowerCase()) found.push({ operator, values });
    }
  }
  return found;
}

/** Any wildcard in an action name: `*`, `s3:*`, and partial ones such as `s3:Get*` or `sagemaker:*Transform*`. */
export function hasActionWildcard(action: string): boolean {
  return /[*?]/.test(action);
}

/**
 * Resource patterns that cover every resource of a kind rather than named ones:
 * `*`; an ARN with a wildcard in its partition, service, region or account; an
 * S3 ARN whose bucket name holds a wildcard (`arn:aws-cn:s3:::*`, `arn:aws:s3:::*\/*`);
 * any other ARN whose resource part (after a `type/` or `type:` head such as
 * `transform-job/`) starts with a wildcard (`transform-job/*`, `function:*`, a bare `*`).
 * `bucket/input/*` and `transform-job/fuxi-dev-*` name their resources and pass.
 */
export function isBroadResource(resource: string): boolean {
  if (/^[*?]+$/.test(resource)) return true;
  const m = /^arn:([^:]*):([^:]*):([^:]*):([^:]*):(.*)$/.exec(resource);
  if (!m) return /[*?]/.test(resource);
  const [, partition, service, region, account, rest] = m;
  if ([partition, service, region, account].some((s) => /[*?]/.test(s))) return true;
  if (service === "s3") return /[*?]/.test(rest.split("/")[0]);
  const name = rest.replace(/^[a-z][a-z0-9-]*[/:](?=.)/i, "");
  return name === "" || /^[*?]/.test(name);
}

/** Conditions that tie an otherwise public grant to one account, organisation, source or endpoint. */
const RESTRICTING_CONDITION_KEYS = ["aws:sourcearn", "aws:sourceaccount", "aws:sourceowner", "aws:principalorgid", "aws:principalaccount", "aws:principalarn", "aws:sourcevpce", "aws:sourcevpc"];

/** `"*"`, `{AWS: "*"}` or an AWS list holding `*`: every principal in every account. */
export function isEveryonePrincipal(principal: unknown): boolean {
  if (principal === "*") return true;
  if (typeof principal !== "object" || principal === null) return false;
  return asArray((principal as Record<string, unknown>).AWS as unknown).some((p) => p === "*");
}

/** An Allow statement of a resource policy that lets anyone in, with no condition narrowing who. */
export function isPublicAllow(st: Statement): boolean {
  if (st.effect !== "Allow" || !isEveryonePrincipal(st.principal)) return false;
  const keys = Object.values(st.conditions).flatMap((block) => Object.keys(block).map((k) => k.toLowerCase()));
  return !keys.some((k) => RESTRICTING_CONDITION_KEYS.includes(k));
}

/** A Deny of every action of `service` (or of `extraActions`) to everyone when aws:SecureTransport is false. */
export function isTlsOnlyDeny(st: Statement, service: string, extraActions: string[] = []): boolean {
  if (st.effect !== "Deny" || !isEveryonePrincipal(st.principal)) return false;
  const accepted = ["*", `${service}:*`, ...extraActions].map((a) => a.toLowerCase());
  if (!st.actions.some((a) => accepted.includes(a.toLowerCase()))) return false;
  return conditionValues(st, "aws:SecureTransport").some(
    (c) => c.operator === "Bool" && c.values.length > 0 && c.values.every((v) => v.toLowerCase() === "false"),
  );
}
