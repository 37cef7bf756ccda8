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
