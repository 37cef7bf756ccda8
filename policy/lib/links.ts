import type { PolicyResource } from "@pulumi/policy";
import { knownString } from "./values";

/**
 * Whether `from.props[prop]` points at `to`. The engine records which resources
 * each input property was computed from (propertyDependencies); that works
 * during a first preview, when ids and ARNs are not known yet. Once values are
 * known (an update, or a stack that already exists) the value itself is
 * compared with the target's identifying properties.
 */
export function refersTo(from: PolicyResource, prop: string, to: PolicyResource, identifiers: string[]): boolean {
  if ((from.propertyDependencies[prop] ?? []).some((d) => d.urn === to.urn)) return true;
  const value = knownString(() => from.props[prop]);
  if (value === undefined || value === "") return false;
  return identifiers.some((k) => knownString(() => to.props[k]) === value);
}

export function ofType(resources: PolicyResource[], ...types: string[]): PolicyResource[] {
  return resources.filter((r) => types.includes(r.type));
}

export function label(r: { type: string; name: string }): string {
  return `${r.type} "${r.name}"`;
}
