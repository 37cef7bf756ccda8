import type { ResourceValidationPolicy } from "@pulumi/policy";
import { isTaggableAwsType } from "../lib/taggable";
import { label } from "../lib/links";
import { parseMaybeJson } from "../lib/values";

export interface TagsConfig {
  requiredKeys: string[];
}
/** The keys the project's components put on everything (`fuxi:stack` is also the trigger's STACK_NAME, docs/contract.md). */
export const TAGS_DEFAULTS: TagsConfig = { requiredKeys: ["fuxi:project", "fuxi:stack"] };

/**
 * Tags a resource will carry: its own `tags` plus the provider's defaultTags
 * (which the aws provider merges into every taggable resource). A value not
 * known during preview throws, and the engine reports that the policy could not
 * run yet; it runs again with known values before the resource is created.
 */
function effectiveTagKeys(props: Record<string, any>, providerProps: Record<string, any> | undefined): Set<string> {
  const keys = new Set<string>();
  for (const [k, v] of Object.entries((props.tags ?? {}) as Record<string, unknown>)) if (v !== undefined && v !== null) keys.add(k);
  const defaults = providerProps === undefined ? undefined : parseMaybeJson(providerProps.defaultTags);
  const defaultTags = (defaults as { tags?: Record<string, unknown> } | undefined)?.tags ?? {};
  for (const [k, v] of Object.entries(defaultTags)) if (v !== undefined && v !== null) keys.add(k);
  return keys;
}

export const requiredTags: ResourceValidationPolicy = {
  name: "required-tags",
  description: "Every taggable AWS resource carries the required tag keys (own tags or the provider's defaultTags).",
  enforcementLevel: "mandatory",
  severity: "low",
  configSchema: {
    properties: {
      requiredKeys: {
        type: "array",
        items: { type: "string", minLength: 1 },
        default: TAGS_DEFAULTS.requiredKeys,
        description: "Tag keys every taggable resource must carry.",
      },
    },
  },
  remediationSteps: "Add the keys to the resource's tags, or to the aws provider's defaultTags.",
  validateResource: (args, report) => {
    const taggable = isTaggableAwsType(args.type) ?? "tags" in args.props;
    if (!taggable) return args.notApplicable(`${args.type} takes no tags`);
    const { requiredKeys } = { ...TAGS_DEFAULTS, ...args.getConfig<Partial<TagsConfig>>() };
    const keys = effectiveTagKeys(args.props, args.provider?.props);
    const missing = requiredKeys.filter((k) => !keys.has(k));
    if (missing.length > 0) report(`${label(args)} is missing required tag${missing.length > 1 ? "s" : ""} ${missing.map((k) => JSON.stringify(k)).join(", ")}`);
  },
};
