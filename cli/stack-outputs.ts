/**
 * What `npm run runs` and `npm run campaign` need to know about a deployed stack, read from its outputs
 * (`pulumi stack output --json --stack <name>`), so the user types no ARN or URL. `--outputs FILE`
 * reads the same JSON from a file (saved outputs, or tests against loopback servers).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import type { CostModel, Prices } from "../cost";

export interface StackOutputs {
  dataBucket: string;
  jobNamePrefix: string;
  inputPrefix: string;
  outputPrefix: string;
  requestsPrefix: string;
  operationalQueueUrl: string;
  backfillQueueUrl: string;
  deadLetterQueueUrl: string;
  /** What runs are priced with (index.ts `costModel`); absent for a stack deployed before it existed. */
  costModel?: CostModel;
  /** "async" when the stack serves runs from its async endpoint (the output exists only then). */
  servingMode?: "batch" | "async";
}

const REQUIRED: (keyof StackOutputs)[] = ["dataBucket", "jobNamePrefix", "inputPrefix", "outputPrefix", "requestsPrefix", "operationalQueueUrl", "backfillQueueUrl", "deadLetterQueueUrl"];

export function parseStackOutputs(json: unknown, source: string): StackOutputs {
  const o = (typeof json === "object" && json !== null ? json : {}) as Record<string, unknown>;
  const missing = REQUIRED.filter((k) => typeof o[k] !== "string");
  if (missing.length > 0) throw new Error(`${source} lacks the outputs ${missing.join(", ")} (deploy the stack with this version of the program first)`);
  const outputs = Object.fromEntries(REQUIRED.map((k) => [k, o[k]])) as unknown as StackOutputs;
  const cost = o.costModel as Partial<CostModel> | undefined;
  if (cost !== undefined) {
    if (typeof cost !== "object" || cost === null) throw new Error(`${source} has a costModel output that is ${JSON.stringify(cost)}, not an object (redeploy the stack with this version of the program)`);
    const bad: string[] = (["instanceType", "instanceCount", "invocationTimeoutSeconds", "steps", "noncurrentDays"] as const).filter((k) => (k === "instanceType" ? typeof cost[k] !== "string" : typeof cost[k] !== "number"));
    const prices = cost.prices as Partial<Record<keyof Prices, unknown>> | null | undefined;
    if (prices) {
      const table = (v: unknown) => typeof v === "object" && v !== null;
      if (typeof prices.currency !== "string") bad.push("prices.currency");
      for (const k of ["instanceHour", "storageGbMonth"] as const) if (!table(prices[k])) bad.push(`prices.${k}`);
      // endpointInstanceHour came later: a stack deployed before it has none (its async runs read "cost unknown").
      if (prices.endpointInstanceHour !== undefined && !table(prices.endpointInstanceHour)) bad.push("prices.endpointInstanceHour");
    }
    if (bad.length > 0) throw new Error(`${source} has a costModel output without ${bad.join(", ")} (redeploy the stack with this version of the program)`);
    // JSON has no undefined: a stack without retention or prices exports null.
    outputs.costModel = { ...(cost as CostModel), prices: cost.prices ?? null, retention: cost.retention ?? undefined };
  }
  if (o.servingMode === "async") outputs.servingMode = "async";
  return outputs;
}

export function readStackOutputs(o: { stack?: string; outputsFile?: string }): StackOutputs {
  if (o.outputsFile) return parseStackOutputs(JSON.parse(readFileSync(o.outputsFile, "utf8")), o.outputsFile);
  if (!o.stack) throw new Error("--stack NAME (or --outputs FILE.json) is required");
  let text: string;
  try {
    text = execFileSync("pulumi", ["stack", "output", "--json", "--stack", o.stack], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const e = error as { code?: string; stderr?: string };
    if (e.code === "ENOENT") throw new Error("the Pulumi CLI is not on PATH: install it, or pass --outputs FILE.json with `pulumi stack output --json` saved elsewhere");
    throw new Error(`pulumi stack output --stack ${o.stack} failed: ${String(e.stderr ?? error).trim()}`);
  }
  return parseStackOutputs(JSON.parse(text), `stack ${o.stack}`);
}

/** `2d`, `12h`, `30m`, `6h` → milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+)(m|h|d)$/.exec(text);
  if (!m || +m[1] === 0) throw new Error(`${flag} must look like 30m, 6h or 2d, got ${JSON.stringify(text)}`);
  return +m[1] * { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "m" | "h" | "d"];
}
