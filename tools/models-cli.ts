/**
 * npm run models -- verify <dir | s3://bucket/prefix/ | s3://bucket/key.tar.gz>
 * npm run models -- upload <dir> s3://bucket/prefix/ [--archive NAME.tar.gz] [--concurrency N] [--part-size-mb N]
 *
 * AWS credentials, region and endpoint come from the standard SDK variables (AWS_PROFILE, AWS_REGION,
 * AWS_ENDPOINT_URL_S3, ...). Exit status: 0 good, 1 faults found (each named), 2 usage error.
 */
import { Presets, SingleBar } from "cli-progress";
import { createS3Client } from "../runtime/src/s3";
import { formatReport, ModelsFault, parseModelsTarget, uploadModels, verifyModels } from "./models";

const USAGE = `usage:
  npm run models -- verify <dir | s3://bucket/prefix/ | s3://bucket/key.tar.gz>
  npm run models -- upload <dir> s3://bucket/prefix/ [--archive NAME.tar.gz] [--concurrency N] [--part-size-mb N]`;

class UsageError extends Error {}

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return `${unit === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[unit]}`;
}

function parseArgs(argv: string[]): { positional: string[]; flags: Map<string, string> } {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split("=", 2) as [string, string | undefined];
    if (!["archive", "concurrency", "part-size-mb"].includes(name)) throw new UsageError(`unknown option --${name}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    flags.set(name, value);
  }
  return { positional, flags };
}

function positiveInteger(flags: Map<string, string>, name: string, max: number): number | undefined {
  const raw = flags.get(name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) throw new UsageError(`--${name} must be an integer from 1 to ${max}, got ${raw}`);
  return Number(raw);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { positional, flags } = parseArgs(rest);
  const client = createS3Client(process.env);
  if (command === "verify") {
    if (positional.length !== 1 || flags.size > 0) throw new UsageError("verify takes one folder or S3 URI");
    const report = await verifyModels(parseModelsTarget(positional[0]!), { client });
    console.log(formatReport(report));
    return report.ok ? 0 : 1;
  }
  if (command === "upload") {
    if (positional.length !== 2) throw new UsageError("upload takes a folder and an s3://bucket/prefix/");
    const partSizeMb = positiveInteger(flags, "part-size-mb", 5120);
    if (partSizeMb !== undefined && partSizeMb < 5) throw new UsageError("--part-size-mb must be at least 5 (S3's smallest part)");
    const bar = new SingleBar({ format: "uploading {file} [{bar}] {percentage}% | {doneText} of {totalText} | {speed}/s", noTTYOutput: true, notTTYSchedule: 5000, stream: process.stderr }, Presets.shades_classic);
    const started = performance.now();
    let barStarted = false;
    try {
      const result = await uploadModels(positional[0]!, positional[1]!, {
        client,
        archive: flags.get("archive"),
        concurrency: positiveInteger(flags, "concurrency", 64),
        partSize: partSizeMb === undefined ? undefined : partSizeMb * 1024 * 1024,
        onVerified: (report) => console.log(formatReport(report)),
        onProgress({ file, done, total }) {
          const payload = { file, doneText: bytes(done), totalText: bytes(total), speed: bytes(done / Math.max(0.001, (performance.now() - started) / 1000)) };
          if (!barStarted) bar.start(total, 0, payload);
          barStarted = true;
          bar.update(done, payload);
        },
      });
      if (barStarted) bar.stop();
      console.log(`uploaded (${result.partsSent} parts sent, ${result.partsSkipped} already there from an interrupted run):`);
      for (const uri of result.uris) console.log(`  ${uri}`);
      console.log(`point the stack at it: pulumi config set --path fuxi:model.artifacts ${result.uris.length === 1 ? result.uris[0] : positional[1]}`);
      return 0;
    } catch (error) {
      if (barStarted) bar.stop();
      if (error instanceof ModelsFault) {
        console.error(error.message);
        return 1;
      }
      throw error;
    }
  }
  throw new UsageError(command === undefined ? "no command" : `unknown command ${JSON.stringify(command)}`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(`${error.message}\n${USAGE}`);
      process.exit(2);
    }
    console.error(`models: ${(error as Error).message}`);
    if (process.argv[2] === "upload") console.error("(run the same command again: an interrupted upload resumes where it stopped)");
    process.exit(1);
  },
);
