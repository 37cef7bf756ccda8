import type { PolicyResource, StackValidationPolicy } from "@pulumi/policy";
import { label, ofType, refersTo } from "../lib/links";
import { T } from "../lib/types";
import { asArray, knownString } from "../lib/values";

/** docs/contract.md: the trigger Lambda's environment names the data bucket and the output prefix. */
export const DATA_BUCKET_VARIABLE = "DATA_BUCKET";
export const OUTPUT_PREFIX_VARIABLE = "OUTPUT_PREFIX";

export interface OutputRetentionConfig {
  productionStacks: string[];
}
export const OUTPUT_RETENTION_DEFAULTS: OutputRetentionConfig = { productionStacks: ["prod", "production"] };

/** The stack name of a URN `urn:pulumi:<stack>::<project>::<type>::<name>`. */
export function stackOfUrn(urn: string): string | undefined {
  return /^urn:pulumi:([^:]+)::/.exec(urn)?.[1];
}

/** An enabled rule that moves or deletes current versions of every object under `prefix`. */
function retainsPrefix(rule: Record<string, any>, prefix: string): boolean {
  if (rule?.status !== "Enabled") return false;
  const filter = rule.filter ?? {};
  if (filter.and !== undefined || filter.tag !== undefined || filter.objectSizeGreaterThan !== undefined || filter.objectSizeLessThan !== undefined) return false;
  const rulePrefix: string = typeof filter.prefix === "string" ? filter.prefix : typeof rule.prefix === "string" ? rule.prefix : "";
  if (!prefix.startsWith(rulePrefix)) return false;
  const transitions = asArray(rule.transitions as Record<string, any>[] | undefined).filter((t) => t?.days !== undefined || t?.date !== undefined);
  const expiration = rule.expiration;
  return transitions.length > 0 || (expiration !== undefined && (expiration.days !== undefined || expiration.date !== undefined));
}

function bucketOf(args: { resources: PolicyResource[] }, fn: PolicyResource, name: string | undefined): PolicyResource | undefined {
  const buckets = ofType(args.resources, T.bucket, T.bucketV2);
  // The environment depends on the bucket (first preview: no name yet); afterwards the name matches.
  return buckets.find((b) => (fn.propertyDependencies.environment ?? []).some((d) => d.urn === b.urn)) ?? buckets.find((b) => name !== undefined && knownString(() => b.props.bucket) === name);
}

export const s3OutputRetentionOnProduction: StackValidationPolicy = {
  name: "s3-output-retention-on-production",
  description:
    "On a production stack, forecast output does not stay in S3 Standard forever: the data bucket has an enabled lifecycle rule that transitions or expires everything under the trigger's OUTPUT_PREFIX (fuxi:dataBucket.outputRetention).",
  enforcementLevel: "advisory",
  severity: "low",
  configSchema: {
    properties: {
      productionStacks: {
        type: "array",
        items: { type: "string", minLength: 1 },
        default: OUTPUT_RETENTION_DEFAULTS.productionStacks,
        description: "Stack names treated as production.",
      },
    },
  },
  remediationSteps:
    "Set fuxi:dataBucket.outputRetention (infrequentAccessAfterDays, archiveAfterDays, expireAfterDays) in the stack's config; docs/cost.md shows the storage each choice keeps.",
  validateStack: (args, report) => {
    const { productionStacks } = { ...OUTPUT_RETENTION_DEFAULTS, ...args.getConfig<Partial<OutputRetentionConfig>>() };
    const stack = args.resources.map((r) => stackOfUrn(r.urn)).find((s) => s !== undefined);
    if (stack === undefined || !productionStacks.includes(stack)) return;
    for (const fn of ofType(args.resources, T.lambdaFunction)) {
      const variables = (fn.props.environment?.variables ?? {}) as Record<string, unknown>;
      if (!(OUTPUT_PREFIX_VARIABLE in variables)) continue;
      const prefix = knownString(() => variables[OUTPUT_PREFIX_VARIABLE]);
      if (prefix === undefined) continue;
      const bucketName = knownString(() => variables[DATA_BUCKET_VARIABLE]);
      const bucket = bucketOf(args, fn, bucketName);
      if (bucket === undefined) {
        report(`${label(fn)} writes forecasts to ${prefix} in bucket ${bucketName ?? "(unknown)"}, which this stack does not manage: its retention cannot be checked here (set lifecycle rules on the bucket itself)`, fn.urn);
        continue;
      }
      const lifecycles = ofType(args.resources, ...T.lifecycle).filter((c) => refersTo(c, "bucket", bucket, ["bucket", "id"]));
      const retained = lifecycles.some((c) => asArray(c.props.rules as Record<string, any>[] | undefined).some((r) => retainsPrefix(r, prefix)));
      if (!retained) {
        report(
          `${label(bucket)}: production stack "${stack}" keeps every forecast under ${prefix} in S3 Standard forever (no enabled lifecycle rule transitions or expires it); set fuxi:dataBucket.outputRetention`,
          bucket.urn,
        );
      }
    }
  },
};

export const retentionPolicies: StackValidationPolicy[] = [s3OutputRetentionOnProduction];
