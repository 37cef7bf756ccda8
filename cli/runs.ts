/**
 * `npm run runs -- --stack <name> [--since 2d]`: one line per run (runId, state, job and status, steps
 * written of expected, wall time, GPU minutes, output size, cost when the stack has prices, reason if
 * failed), the totals and the queue depths.
 * `npm run runs -- replay --stack <name>`: dead-lettered runs back into their queue.
 * `--outputs FILE.json` instead of `--stack` reads saved `pulumi stack output --json`.
 */
import { parseArgs } from "node:util";
import { S3Client } from "@aws-sdk/client-s3";
import { SageMakerClient } from "@aws-sdk/client-sagemaker";
import { GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { formatRunsTable, listRunIds, runStatus, type RunStatus } from "./run-status";
import { replayDeadLetters } from "./replay";
import { parseDuration, readStackOutputs, type StackOutputs } from "./stack-outputs";

const USAGE = "usage: npm run runs -- [replay] (--stack NAME | --outputs FILE.json) [--since 2d]";

async function depth(sqs: SQSClient, url: string): Promise<string> {
  const a = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }))).Attributes ?? {};
  return `${a.ApproximateNumberOfMessages ?? 0} waiting + ${a.ApproximateNumberOfMessagesNotVisible ?? 0} in flight`;
}

export async function main(argv: string[]): Promise<number> {
  let values: { stack?: string; outputs?: string; since?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { stack: { type: "string" }, outputs: { type: "string" }, since: { type: "string" }, help: { type: "boolean", short: "h" } } }));
    if (values.help) return console.log(USAGE), 0;
    if (positionals.length > 1 || (positionals[0] !== undefined && positionals[0] !== "replay")) throw new Error(`unexpected argument ${JSON.stringify(positionals.at(-1))}`);
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  let out: StackOutputs;
  let since: Date | undefined;
  try {
    out = readStackOutputs({ stack: values.stack, outputsFile: values.outputs });
    since = values.since ? new Date(Date.now() - parseDuration(values.since, "--since")) : undefined;
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  const sqs = new SQSClient({});
  const s3 = new S3Client({ forcePathStyle: process.env.S3_FORCE_PATH_STYLE === "true" });
  const sageMaker = new SageMakerClient({});
  try {
    if (positionals[0] === "replay") {
      const moved = await replayDeadLetters(sqs, out);
      console.log(`replayed ${moved.operational + moved.backfill} dead-lettered run(s): ${moved.operational} to ${out.operationalQueueUrl}, ${moved.backfill} to ${out.backfillQueueUrl}`);
      return 0;
    }
    const runs = await listRunIds(s3, out, since);
    const statuses: RunStatus[] = [];
    for (const run of runs) statuses.push(await runStatus({ s3, sageMaker }, out, run));
    for (const line of formatRunsTable(statuses, out.costModel)) console.log(line);
    const counts: Record<string, number> = {};
    for (const s of statuses) counts[s.state] = (counts[s.state] ?? 0) + 1;
    console.log(`${runs.length} run(s)${since ? ` with a marker since ${since.toISOString()}` : ""}: ${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ") || "none"}`);
    console.log(`queues: operational ${await depth(sqs, out.operationalQueueUrl)}, backfill ${await depth(sqs, out.backfillQueueUrl)}, dead-letter ${await depth(sqs, out.deadLetterQueueUrl)}`);
    return 0;
  } catch (error) {
    console.error(`${(error as { name?: string }).name ?? "Error"}: ${(error as Error).message}`);
    return 1;
  } finally {
    sqs.destroy();
    s3.destroy();
    sageMaker.destroy();
  }
}

if (require.main === module) void main(process.argv.slice(2)).then((code) => (process.exitCode = code));
