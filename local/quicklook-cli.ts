/** `npm run quicklook -- <folder | s3://bucket/prefix/> [--out dir] [--leads 24,120,240,360] [--note text] [--shared-range]` */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { S3Client } from "@aws-sdk/client-s3";
import { DEFAULT_LEADS, localStepSource, renderQuicklooks, s3StepSource } from "./quicklook";

const USAGE = "usage: npm run quicklook -- <output folder | s3://bucket/prefix/> [--out dir] [--leads 24,120,240,360] [--note text] [--shared-range]";

export function parseLeads(text: string): number[] {
  const leads = text.split(",").map((part) => Number(part.trim()));
  if (leads.length === 0 || leads.some((lead) => !Number.isInteger(lead) || lead < 0)) throw new Error(`--leads must be comma-separated whole hours, got ${JSON.stringify(text)}`);
  return leads;
}

async function main() {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { out: { type: "string" }, leads: { type: "string" }, note: { type: "string" }, "shared-range": { type: "boolean", default: false }, help: { type: "boolean", short: "h" } },
  });
  if (values.help || positionals.length !== 1) {
    console.log(USAGE);
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  const target = positionals[0];
  const isS3 = target.startsWith("s3://");
  const source = isS3
    ? s3StepSource(new S3Client({ forcePathStyle: process.env.S3_FORCE_PATH_STYLE?.toLowerCase() === "true" }), target)
    : localStepSource(resolve(target));
  const outDir = resolve(values.out ?? (isS3 ? join("quicklook", target.slice("s3://".length)) : join(target, "quicklook")));
  const images = await renderQuicklooks({ source, outDir, leads: values.leads ? parseLeads(values.leads) : DEFAULT_LEADS, note: values.note, sharedRange: values["shared-range"] });
  for (const image of images) console.log(`${image.variable.padEnd(5)} +${String(image.leadHours).padStart(3)} h  ${image.file}`);
  console.log(`${images.length} maps (${images[0]?.width}×${images[0]?.height}) from ${source.describe} in ${outDir}`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
