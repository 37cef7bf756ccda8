/**
 * `npm run bench:burst -- [--runs 200] [--quota 2] [--job-minutes 15] [--reserve 1] [--campaign 50]`
 *
 * The run queue on a simulated clock (tools/run-queue-sim.ts: the real dispatcher behind emulated
 * event source mappings, over in-memory S3, SageMaker and SQS). Two scenarios in one run:
 * 1. a burst of `--runs` markers within one minute (every tenth delivered twice, as S3 may), with an
 *    account quota and a cap of `--quota` InProgress jobs;
 * 2. a backfill campaign of `--campaign` runs with one operational marker arriving half-way.
 * Exits 1 when a target is missed.
 */
import { parseArgs } from "node:util";
import { simulateRunQueue, type SimArrival } from "../tools/run-queue-sim";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "200" },
    quota: { type: "string", default: "2" },
    "job-minutes": { type: "string", default: "15" },
    reserve: { type: "string", default: "1" },
    campaign: { type: "string", default: "50" },
  },
});
const runs = Number(values.runs);
const quota = Number(values.quota);
const jobMinutes = Number(values["job-minutes"]);
const reserve = Number(values.reserve);
const campaign = Number(values.campaign);
for (const [flag, v] of [["--runs", runs], ["--quota", quota], ["--job-minutes", jobMinutes], ["--campaign", campaign]] as const) {
  if (!Number.isInteger(v) || v < 1) {
    console.error(`${flag} must be a whole number ≥ 1`);
    process.exit(2);
  }
}
const jobMs = jobMinutes * 60_000;
const runId = (prefix: string, i: number) => `${prefix}${String(i).padStart(4, "0")}`;

async function main() {
  const wall = performance.now();
  const burst: SimArrival[] = Array.from({ length: runs }, (_, i) => ({ at: Math.floor((i * 60_000) / runs), runId: runId("burst", i), lane: "operational", deliveries: i % 10 === 0 ? 2 : 1 }));
  const a = await simulateRunQueue({ arrivals: burst, quota, maxConcurrentJobs: quota, operationalReserve: reserve, jobMs });
  const ideal = Math.ceil(runs / quota) * jobMs;
  const makespanRatio = a.makespanMs / ideal;

  const backfillLimit = quota - Math.min(reserve, quota - 1);
  const half = Math.floor((Math.ceil(campaign / backfillLimit) * jobMs) / 2) + 7 * 60_000;
  const mixed: SimArrival[] = [
    ...Array.from({ length: campaign }, (_, i) => ({ at: i * 100, runId: runId("backfill", i), lane: "backfill" as const })),
    { at: half, runId: "operational", lane: "operational" },
  ];
  const b = await simulateRunQueue({ arrivals: mixed, quota, maxConcurrentJobs: quota, operationalReserve: reserve, jobMs });
  const op = b.runs.find((r) => r.runId === "operational")!;
  const opWait = op.jobs.length ? (op.jobs[0].createdAt - op.arrivedAt) / jobMs : Infinity;
  const wallS = (performance.now() - wall) / 1000;

  const lines = [
    `burst: ${runs} markers in 1 min (every 10th delivered twice), quota ${quota}, cap ${quota}, jobs ${jobMinutes} min; simulated ${(a.endedAt / 3600_000).toFixed(1)} h, ${a.invocations} dispatcher invocations, ${a.resourceLimitAnswers} ResourceLimitExceeded`,
    `campaign: ${campaign} backfill runs (at most ${backfillLimit} at a time, reserve ${reserve}) + 1 operational marker at +${(half / 60_000).toFixed(0)} min; ${b.ran}/${campaign + 1} ran, failure queue ${b.deadLetters}, duplicate jobs ${b.duplicateJobs}, max in progress ${b.maxInProgress}`,
    `wall ${wallS.toFixed(1)} s`,
    `ran ${a.ran}/${runs}`,
    `failure queue ${a.deadLetters}`,
    `duplicate jobs ${a.duplicateJobs} (request objects written at most ${a.requestWrites.max}×)`,
    `max in progress ${a.maxInProgress} ≤ cap ${quota}: ${a.maxInProgress <= quota ? "yes" : "NO"}`,
    `makespan / ideal ${makespanRatio.toFixed(3)} (makespan ${(a.makespanMs / 3600_000).toFixed(2)} h, ideal ceil(${runs}/${quota}) × ${jobMinutes} min = ${(ideal / 3600_000).toFixed(2)} h; target ≤ 1.15)`,
    `operational run wait ${opWait.toFixed(3)} job durations (target ≤ 1.2)`,
  ];
  console.log(lines.join("\n"));
  const ok = a.ran === runs && a.deadLetters === 0 && a.duplicateJobs === 0 && a.maxInProgress <= quota && makespanRatio <= 1.15 && opWait <= 1.2 && b.ran === campaign + 1 && b.duplicateJobs === 0 && b.maxInProgress <= quota;
  if (!ok) process.exitCode = 1;
}

void main();
