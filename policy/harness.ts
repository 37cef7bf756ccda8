/**
 * Runs the pack's policies outside the Pulumi engine, with arguments shaped
 * like the ones the engine's analyzer server builds (@pulumi/policy server.js):
 * props wrapped in the same unknown-checking proxy, isType/asType by type
 * token, getConfig per policy, notApplicable that throws, and stack resources
 * with parent, dependencies and propertyDependencies resolved to objects.
 * Used by the tests and by tools that check the mocked program; the pack's
 * entry file does not import it.
 */
import {
  unknownCheckingProxy,
  UnknownValueError,
  type Policies,
  type PolicyPackConfig,
  type PolicyResource,
  type ResourceValidationArgs,
  type ResourceValidationPolicy,
  type StackValidationArgs,
  type StackValidationPolicy,
} from "@pulumi/policy";

// The engine's "value not known during preview" sentinels, as the analyzer deserialises them.
const sentinels = require("@pulumi/policy/proxy") as { unknownStringValue: string; unknownObjectValue: string; unknownArrayValue: string; unknownNumberValue: string; unknownBooleanValue: string };
export const UNKNOWN_VALUES = {
  string: sentinels.unknownStringValue,
  object: sentinels.unknownObjectValue,
  array: sentinels.unknownArrayValue,
  number: sentinels.unknownNumberValue,
  boolean: sentinels.unknownBooleanValue,
} as const;

export interface AnalyzedResource {
  type: string;
  name: string;
  urn: string;
  /** Inputs: what the engine gives resource policies. */
  props: Record<string, any>;
  /** Outputs: what the engine gives stack policies (falls back to the inputs when absent). */
  outputs?: Record<string, any>;
  parent?: string;
  dependencies?: string[];
  propertyDependencies?: Record<string, string[]>;
  provider?: { type: string; name: string; urn: string; props: Record<string, any> };
  /**
   * Read with `Resource.get` (an adopted bucket and its settings): the engine validates
   * resources it registers (creates or updates); a read one reaches the stack policies only.
   */
  external?: boolean;
}

export interface Finding {
  policy: string;
  message: string;
  urn?: string;
}

export interface PackResult {
  violations: Finding[];
  /** Policies the engine would report as "can't run during preview" (advisory). */
  unknowns: Finding[];
}

class NotApplicable extends Error {}

function isTypeOf(type: string, resourceClass: unknown): boolean {
  const pulumiType = (resourceClass as { __pulumiType?: string }).__pulumiType;
  if (pulumiType) return type === pulumiType;
  const isInstance = (resourceClass as { isInstance?: (o: unknown) => boolean }).isInstance;
  return typeof isInstance === "function" && isInstance({ __pulumiType: type }) === true;
}

function configOf(config: PolicyPackConfig, policy: string): any {
  const c = config[policy];
  if (c === undefined || typeof c === "string") return {};
  const { enforcementLevel: _, ...rest } = c;
  return rest;
}

function enforcementOf(config: PolicyPackConfig, policy: { name: string; enforcementLevel?: string }): string | undefined {
  const c = config[policy.name];
  return (typeof c === "string" ? c : c?.enforcementLevel) ?? policy.enforcementLevel;
}

function notApplicable(reason?: string): never {
  throw new NotApplicable(reason);
}

export async function runResourcePolicy(policy: ResourceValidationPolicy, r: AnalyzedResource, config: PolicyPackConfig = {}): Promise<PackResult> {
  const result: PackResult = { violations: [], unknowns: [] };
  if (r.external) return result;
  const validations = policy.validateResource === undefined ? [] : Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource];
  for (const validate of validations) {
    const props = unknownCheckingProxy(r.props);
    const args: ResourceValidationArgs = {
      type: r.type,
      props,
      urn: r.urn,
      name: r.name,
      opts: { protect: false, ignoreChanges: [], aliases: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 }, additionalSecretOutputs: [], parent: r.parent },
      provider: r.provider && { ...r.provider, props: unknownCheckingProxy(r.provider.props) },
      stackTags: new Map(),
      isType: (cls) => isTypeOf(r.type, cls),
      asType: ((cls: unknown) => (isTypeOf(r.type, cls) ? props : undefined)) as ResourceValidationArgs["asType"],
      getConfig: () => configOf(config, policy.name),
      notApplicable,
    };
    try {
      await validate(args, (message) => result.violations.push({ policy: policy.name, message, urn: r.urn }));
    } catch (e) {
      if (e instanceof NotApplicable) continue;
      if (e instanceof UnknownValueError) {
        result.unknowns.push({ policy: policy.name, message: (e as Error).message, urn: r.urn });
        continue;
      }
      throw e;
    }
  }
  return result;
}

export function toPolicyResources(resources: AnalyzedResource[]): PolicyResource[] {
  const byUrn = new Map<string, PolicyResource>();
  for (const r of resources) {
    const props = unknownCheckingProxy(r.outputs ?? r.props);
    byUrn.set(r.urn, {
      type: r.type,
      props,
      urn: r.urn,
      name: r.name,
      opts: { protect: false, ignoreChanges: [], aliases: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 }, additionalSecretOutputs: [], parent: r.parent },
      provider: r.provider && { ...r.provider, props: unknownCheckingProxy(r.provider.props) },
      dependencies: [],
      propertyDependencies: {},
      isType: (cls) => isTypeOf(r.type, cls),
      asType: ((cls: unknown) => (isTypeOf(r.type, cls) ? props : undefined)) as PolicyResource["asType"],
    });
  }
  const resolve = (urns: string[] | undefined) => (urns ?? []).map((u) => byUrn.get(u)).filter((x): x is PolicyResource => x !== undefined);
  for (const r of resources) {
    const pr = byUrn.get(r.urn)!;
    if (r.parent) pr.parent = byUrn.get(r.parent);
    pr.dependencies = resolve(r.dependencies);
    for (const [k, urns] of Object.entries(r.propertyDependencies ?? {})) pr.propertyDependencies[k] = resolve(urns);
  }
  return [...byUrn.values()];
}

export async function runStackPolicy(policy: StackValidationPolicy, resources: AnalyzedResource[], config: PolicyPackConfig = {}): Promise<PackResult> {
  const result: PackResult = { violations: [], unknowns: [] };
  const args: StackValidationArgs = {
    resources: toPolicyResources(resources),
    stackTags: new Map(),
    getConfig: () => configOf(config, policy.name),
    notApplicable,
  };
  try {
    await policy.validateStack(args, (message, urn) => result.violations.push({ policy: policy.name, message, urn }));
  } catch (e) {
    if (e instanceof UnknownValueError) result.unknowns.push({ policy: policy.name, message: (e as Error).message });
    else if (!(e instanceof NotApplicable)) throw e;
  }
  return result;
}

/** Every policy on every resource, then every stack policy, skipping disabled ones, as a preview with the pack would. */
export async function runPack(policies: Policies, resources: AnalyzedResource[], config: PolicyPackConfig = {}): Promise<PackResult> {
  const total: PackResult = { violations: [], unknowns: [] };
  for (const policy of policies) {
    if (enforcementOf(config, policy) === "disabled") continue;
    const parts =
      "validateStack" in policy
        ? [await runStackPolicy(policy, resources, config)]
        : await Promise.all(resources.map((r) => runResourcePolicy(policy, r, config)));
    for (const p of parts) {
      total.violations.push(...p.violations);
      total.unknowns.push(...p.unknowns);
    }
  }
  return total;
}

/** The shape tools/mock-program.ts records (kept structural so the pack does not depend on the program's tools). */
export interface RecordedResource {
  type: string;
  name: string;
  urn: string;
  custom: boolean;
  inputs: Record<string, any>;
  outputs?: Record<string, any>;
  parent?: string;
  dependsOn: string[];
  propertyDependencies?: Record<string, string[]>;
  provider?: string;
  external?: boolean;
}

/**
 * Resources recorded from a program run under mocks, as the analyzer would see
 * them (components included), with the provider resolved from its "urn::id" reference.
 */
export function fromRecorded(recorded: RecordedResource[]): AnalyzedResource[] {
  const byUrn = new Map(recorded.map((r) => [r.urn, r]));
  return recorded.map((r) => {
      const providerRecord = r.provider ? byUrn.get(r.provider.split("::").slice(0, -1).join("::")) : undefined;
      return {
        type: r.type,
        name: r.name,
        urn: r.urn,
        props: r.inputs,
        outputs: r.outputs,
        parent: r.parent,
        dependencies: r.dependsOn,
        propertyDependencies: r.propertyDependencies ?? {},
        provider: providerRecord && { type: providerRecord.type, name: providerRecord.name, urn: providerRecord.urn, props: providerRecord.inputs },
        ...(r.external ? { external: true } : {}),
      };
    });
}
