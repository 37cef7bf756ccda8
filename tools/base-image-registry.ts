/**
 * `npx tsx tools/base-image-registry.ts <stack>`: the ECR registry of the stack's base image
 * (fuxi:image.baseImage, by default the AWS Deep Learning Container of the stack's region) as
 * `<registry-host> <region>`, for `aws ecr get-login-password | docker login` before the image
 * build. Prints nothing for a base image outside ECR (a public registry needs no login).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { parseStackConfig } from "../config";

const ECR_HOST = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/;

export function baseImageRegistry(baseImage: string): { host: string; region: string } | undefined {
  const host = baseImage.split("/")[0]!;
  const m = ECR_HOST.exec(host);
  return m ? { host, region: m[2]! } : undefined;
}

if (require.main === module) {
  const stack = process.argv[2];
  if (!stack) {
    console.error("usage: tsx tools/base-image-registry.ts <stack>");
    process.exit(2);
  }
  // Encrypted values (fuxi:alerts) cannot be read without the CLI and never name an image: skip them.
  const file = parse(readFileSync(join(__dirname, "..", `Pulumi.${stack}.yaml`), "utf8")) as { config?: Record<string, unknown> };
  const raw = Object.fromEntries(
    Object.entries(file.config ?? {})
      .filter(([, v]) => !JSON.stringify(v).includes('"secure":'))
      .map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
  const cfg = parseStackConfig({ stack, region: raw["aws:region"] ?? "", raw });
  const registry = baseImageRegistry(cfg.image.baseImage);
  if (registry) console.log(`${registry.host} ${registry.region}`);
}
