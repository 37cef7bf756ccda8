/**
 * Child-process side of tools/mock-program.ts: `node --import tsx mock-program-runner.ts <options.json> <result.json>`.
 * Sets config and mocks BEFORE loading index.ts, runs it as the CLI would (inside
 * a Stack resource), and writes every registered resource to result.json.
 */
import * as pulumi from "@pulumi/pulumi";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { partitionFacts, partitionOfRegion } from "../components/partition";
import type { MockedResource, MockRunOptions } from "./mock-program";
import { createMocks, plainInputs, stackConfig } from "./mock-program-mocks";

const REPO_ROOT = join(__dirname, "..");
const PROJECT = "fuxi-sagemaker";

/** An alias as the engine is told it: a full URN, or a spec (name, and the parent it had). */
function aliasText(a: any): string {
  if (typeof a === "string") return a;
  if (a.getUrn?.()) return a.getUrn();
  const spec = a.getSpec?.();
  if (!spec) return JSON.stringify(a.toObject?.() ?? a);
  return [spec.getName() && `name=${spec.getName()}`, spec.getType() && `type=${spec.getType()}`, spec.getParenturn() && `parent=${spec.getParenturn()}`, spec.getNoparent() && "noParent"].filter(Boolean).join(" ");
}

async function main(): Promise<void> {
  const [optionsFile, resultFile] = process.argv.slice(2);
  const options = JSON.parse(readFileSync(optionsFile!, "utf8")) as MockRunOptions;
  try {
    const overrides = { ...(options.config ?? {}), ...(options.region ? { "aws:region": options.region } : {}) };
    const config = stackConfig(options.stack, overrides);
    const region = config["aws:region"] ?? "";
    const partition = partitionOfRegion(region);
    const facts = partitionFacts(partition);
    const account = options.accountId ?? "123456789012";

    pulumi.runtime.setAllConfig(config, options.secretKeys ?? []);
    const mocks = createMocks({ partition, region, account, dnsSuffix: facts.dnsSuffix, s3Objects: options.s3Objects, existingBuckets: options.existingBuckets });
    await pulumi.runtime.setMocks(mocks, PROJECT, options.stack, false);

    // Record what the engine is told about each resource (parent, dependencies,
    // provider): setMocks' newResource hook does not see those.
    const monitor = pulumi.runtime.getMonitor() as any;
    const records: MockedResource[] = [];
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, callback: (err: unknown, resp: any) => void) => {
      register(req, (err: unknown, resp: any) => {
        if (!err && resp) {
          const secretInputs: string[] = [];
          const inputs = plainInputs(req.getObject()?.toJavaScript() ?? {}, secretInputs) as Record<string, any>;
          records.push({
            type: req.getType(),
            name: req.getName(),
            urn: resp.getUrn(),
            custom: req.getCustom(),
            inputs,
            outputs: plainInputs(resp.getObject()?.toJavaScript() ?? {}, []) as Record<string, any>,
            secretInputs,
            ...(req.getParent() ? { parent: req.getParent() } : {}),
            dependsOn: [...new Set<string>(req.getDependenciesList())].sort(),
            propertyDependencies: Object.fromEntries(
              [...req.getPropertydependenciesMap().entries()].map(([k, v]: [string, any]) => [k, [...new Set<string>(v.getUrnsList())].sort()]),
            ),
            ...(req.getProvider() ? { provider: req.getProvider() } : {}),
            options: {
              protect: req.getProtect() === true,
              retainOnDelete: req.getRetainondelete?.() === true,
              ignoreChanges: req.getIgnorechangesList?.() ?? [],
              aliases: (req.getAliasesList?.() ?? []).map(aliasText),
            },
          });
        }
        callback(err, resp);
      });
    };
    const read = monitor.readResource.bind(monitor);
    monitor.readResource = (req: any, callback: (err: unknown, resp: any) => void) => {
      read(req, (err: unknown, resp: any) => {
        if (!err && resp) {
          const state = plainInputs(resp.getProperties()?.toJavaScript() ?? {}, []) as Record<string, any>;
          records.push({
            type: req.getType(),
            name: req.getName(),
            urn: resp.getUrn(),
            custom: true,
            inputs: state,
            outputs: state,
            secretInputs: [],
            ...(req.getParent() ? { parent: req.getParent() } : {}),
            dependsOn: [...new Set<string>(req.getDependenciesList())].sort(),
            propertyDependencies: {},
            external: true,
          });
        }
        callback(err, resp);
      });
    };

    const outputs = await pulumi.runtime.runInPulumiStack(async () => {
      const program = require(join(REPO_ROOT, "index.ts"));
      const main = program.default ?? program;
      return typeof main === "function" ? await main() : main;
    });
    const settled = await new Promise<Record<string, unknown>>((resolve) => pulumi.output(outputs ?? {}).apply((v) => resolve(v as Record<string, unknown>)));
    await pulumi.runtime.disconnect();
    writeFileSync(resultFile!, JSON.stringify({ ok: true, resources: records, outputs: settled }));
  } catch (error) {
    const e = error as Error;
    writeFileSync(resultFile!, JSON.stringify({ ok: false, error: e?.message ?? String(error) }));
    process.exitCode = 1;
  }
}

if (require.main === module) void main();
