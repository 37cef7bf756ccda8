/**
 * Offline plan: `npm run plan` runs the Pulumi program for each stack under
 * mocks (tools/mock-program.ts: no CLI, no credentials, no AWS calls) and
 * writes the resource graph to plans/<stack>.md, a reviewable file whose diff
 * shows in every pull request what the change does to the infrastructure.
 *
 * The output is deterministic and machine-independent: resources are ordered
 * by the parent tree and then by type and name; secrets are `[secret]`;
 * absolute paths become repository-relative; values that stand for something
 * generated at deploy time (auto-name suffixes, source hashes, image digests,
 * bundled Lambda code) are replaced by placeholders.
 *
 * `npm run plan -- --check` exits 1 when a committed plan is stale.
 */
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { stringify } from "yaml";
import { runProgramUnderMocks, type MockedResource, type MockRunResult } from "./mock-program";

export const PLAN_STACKS = ["dev", "prod"] as const;
export type PlanStack = (typeof PLAN_STACKS)[number];

const REPO_ROOT = join(__dirname, "..");
export const planPath = (stack: PlanStack): string => join(REPO_ROOT, "plans", `${stack}.md`);

const SECRET = "[secret]";
/** Outputs known before deployment whose values a reviewer should see (the others are names and ARNs). */
const PLAN_SHOWN_OUTPUTS = ["steadyStateStorage"];

/** Sets `[secret]` at each dotted path (paths come from the mock run's secretInputs). */
function maskSecrets(inputs: Record<string, unknown>, paths: string[]): Record<string, unknown> {
  const copy = structuredClone(inputs);
  for (const path of paths) {
    const keys = path.split(".");
    let node: any = copy;
    for (const k of keys.slice(0, -1)) node = node?.[k];
    if (node && typeof node === "object" && keys.at(-1)! in node) node[keys.at(-1)!] = SECRET;
    else if (path === "") return { value: SECRET };
  }
  return copy;
}

interface Scrubber {
  (s: string): string;
}

/**
 * Replaces values that differ between machines or runs with placeholders.
 * Auto-names: Pulumi appends a random suffix to a resource's logical name when
 * no physical name is given; the mocks use 7 hex characters for it.
 */
function makeScrubber(resources: MockedResource[]): Scrubber {
  const names = [...new Set(resources.map((r) => r.name))].sort((a, b) => b.length - a.length);
  const escaped = names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const autoName = escaped.length > 0 ? new RegExp(`\\b(${escaped.join("|")})-[0-9a-f]{7}\\b`, "g") : undefined;
  const root = REPO_ROOT.endsWith(sep) ? REPO_ROOT : REPO_ROOT + sep;
  return (s) => {
    let out = s;
    if (out.startsWith(root) || out === REPO_ROOT) out = "./" + relative(REPO_ROOT, out).split(sep).join("/");
    out = out.split(root).join("./");
    if (autoName) out = out.replace(autoName, "$1-<auto>");
    out = out.replace(/@sha256:[0-9a-f]{64}/g, "@sha256:<digest>");
    out = out.replace(/:src-[0-9a-f]{8,}/g, ":src-<source hash>");
    return out;
  };
}

/** Plain JSON in, the rendered form out: assets/archives summarised, JSON documents expanded for line diffs. */
function renderValue(value: unknown, scrub: Scrubber): unknown {
  if (typeof value === "string") {
    const s = scrub(value);
    if (/^\s*[{[]/.test(s)) {
      try {
        const parsed = JSON.parse(s);
        if (parsed && typeof parsed === "object") return { "(JSON)": renderValue(parsed, scrub) };
      } catch {
        // not JSON: keep the string
      }
    }
    return s;
  }
  if (Array.isArray(value)) return value.map((v) => renderValue(v, scrub));
  if (value === null || typeof value !== "object") return value;
  const obj = value as Record<string, unknown>;
  if ("__archive" in obj) return summariseArchive(obj.__archive as Record<string, unknown>, scrub);
  if ("__asset" in obj) return summariseAsset(obj.__asset as Record<string, unknown>, scrub);
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, renderValue(v, scrub)]));
}

function summariseAsset(asset: Record<string, unknown>, scrub: Scrubber): string {
  if (typeof asset.path === "string") return `[file asset ${scrub(asset.path)}]`;
  if (typeof asset.uri === "string") return `[remote asset ${asset.uri}]`;
  return "[inline asset]";
}

function summariseArchive(archive: Record<string, unknown>, scrub: Scrubber): string {
  if (typeof archive.path === "string") return `[archive ${scrub(archive.path)}]`;
  if (typeof archive.uri === "string") return `[remote archive ${archive.uri}]`;
  const files = Object.keys((archive.assets ?? {}) as Record<string, unknown>).sort();
  return `[archive of ${files.join(", ")} (built from source)]`;
}

function displayName(r: MockedResource): string {
  return `${r.type} \`${r.name}\``;
}

/** Depth-first through the parent tree; siblings by type, then name. */
function orderByTree(resources: MockedResource[]): { resource: MockedResource; depth: number }[] {
  const urns = new Set(resources.map((r) => r.urn));
  const children = new Map<string | undefined, MockedResource[]>();
  for (const r of resources) {
    const parent = r.parent && urns.has(r.parent) ? r.parent : undefined;
    children.set(parent, [...(children.get(parent) ?? []), r]);
  }
  const ordered: { resource: MockedResource; depth: number }[] = [];
  const visit = (parent: string | undefined, depth: number) => {
    const kids = (children.get(parent) ?? []).sort((a, b) => a.type.localeCompare(b.type) || a.name.localeCompare(b.name));
    for (const k of kids) {
      ordered.push({ resource: k, depth });
      visit(k.urn, depth + 1);
    }
  };
  visit(undefined, 0);
  return ordered;
}

export function renderPlan(stack: PlanStack, result: MockRunResult): string {
  const resources = result.resources.filter((r) => r.type !== "pulumi:pulumi:Stack");
  const byUrn = new Map(result.resources.map((r) => [r.urn, r]));
  const scrub = makeScrubber(result.resources);
  const counts = new Map<string, number>();
  for (const r of resources.filter((x) => x.custom)) counts.set(r.type, (counts.get(r.type) ?? 0) + 1);

  const lines: string[] = [
    `# Plan: ${stack}`,
    "",
    `Generated by \`npm run plan\` from the Pulumi program and \`Pulumi.${stack}.yaml\`, run under mocks`,
    "(no credentials, no AWS calls; the account is the mock's 123456789012). Do not edit by hand:",
    "a test fails when this file is stale. Placeholders: `<auto>` is the random suffix Pulumi adds",
    "to auto-named resources, `<digest>`/`<source hash>` depend on the built image, `[secret]` is a secret input.",
    "",
    "## Summary",
    "",
    `${resources.filter((r) => r.custom).length} cloud resources in ${resources.filter((r) => !r.custom).length} components.`,
    "",
    "| type | count |",
    "|---|---|",
    ...[...counts.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([t, n]) => `| \`${t}\` | ${n} |`),
    "",
    `Stack outputs: ${Object.keys(result.outputs).sort().map((k) => `\`${k}\``).join(", ") || "none"}.`,
    "",
    ...PLAN_SHOWN_OUTPUTS.filter((k) => result.outputs[k] !== undefined).flatMap((k) => [
      `Output \`${k}\`:`,
      "",
      "```yaml",
      stringify(renderValue(result.outputs[k], scrub), { lineWidth: 0 }).trimEnd(),
      "```",
      "",
    ]),
    "## Resources",
    "",
  ];
  for (const { resource: r, depth } of orderByTree(resources)) {
    lines.push(`${"#".repeat(Math.min(3 + depth, 6))} ${displayName(r)}`, "");
    const parent = r.parent ? byUrn.get(r.parent) : undefined;
    if (parent && parent.type !== "pulumi:pulumi:Stack") lines.push(`- parent: ${displayName(parent)}`);
    const deps = r.dependsOn
      .filter((u) => u !== r.parent)
      .map((u) => byUrn.get(u))
      .filter((d): d is MockedResource => d !== undefined)
      .map(displayName)
      .sort();
    if (deps.length > 0) lines.push(`- depends on: ${deps.join(", ")}`);
    if (r.provider) lines.push(`- provider: \`${scrub(r.provider.split("::").at(-2) ?? r.provider)}\``);
    const o = r.options;
    const safety = o ? [o.protect && "protect", o.retainOnDelete && "retainOnDelete", o.ignoreChanges.length > 0 && `ignoreChanges ${o.ignoreChanges.join(", ")}`].filter(Boolean) : [];
    if (safety.length > 0) lines.push(`- options: ${safety.join("; ")}`);
    const aliases = (o?.aliases ?? []).filter((a) => a.startsWith("name="));
    if (aliases.length > 0) lines.push(`- aliases: ${aliases.map((a) => `\`${a.replace(/^name=/, "").split(" ")[0]}\``).join(", ")}`);
    if (r.external) lines.push("- read, not managed (an existing resource)");
    const inputs = renderValue(maskSecrets(r.inputs, r.secretInputs), scrub) as Record<string, unknown>;
    if (Object.keys(inputs).length > 0) {
      if (lines.at(-1) !== "") lines.push("");
      lines.push("```yaml", stringify(inputs, { sortMapEntries: true, lineWidth: 0 }).trimEnd(), "```");
    }
    if (lines.at(-1) !== "") lines.push("");
  }
  return lines.join("\n").trimEnd() + "\n";
}

export async function generatePlan(stack: PlanStack): Promise<string> {
  return renderPlan(stack, await runProgramUnderMocks({ stack }));
}

async function main(): Promise<void> {
  const check = process.argv.includes("--check");
  const plans = await Promise.all(PLAN_STACKS.map(async (stack) => ({ stack, text: await generatePlan(stack) })));
  let stale = false;
  for (const { stack, text } of plans) {
    const file = planPath(stack);
    let current: string | undefined;
    try {
      current = readFileSync(file, "utf8");
    } catch {
      current = undefined;
    }
    if (check) {
      if (current !== text) {
        stale = true;
        console.error(`${relative(REPO_ROOT, file)} is stale: run \`npm run plan\` and commit the result`);
      }
    } else {
      mkdirSync(join(REPO_ROOT, "plans"), { recursive: true });
      writeFileSync(file, text);
      console.log(`${relative(REPO_ROOT, file)}: ${current === text ? "unchanged" : "written"}`);
    }
  }
  if (stale) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  });
}
