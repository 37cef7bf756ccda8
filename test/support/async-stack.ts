import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { MockRunOptions } from "../../tools/mock-program";

/** test/stacks/async.yaml: prod in serving.mode "async", as config overrides for runProgramUnderMocks. */
export function asyncStackConfig(): Record<string, unknown> {
  const file = parse(readFileSync(join(__dirname, "..", "stacks", "async.yaml"), "utf8")) as { config: Record<string, unknown> };
  return file.config;
}

export const ASYNC_STACK: MockRunOptions = { stack: "prod", get config() { return asyncStackConfig(); } };
