/**
 * The run queue on a simulated clock: the real dispatcher (trigger/handler.ts, createDispatcherHandler)
 * behind the emulated event source mappings, over in-memory S3, SageMaker and SQS (memory-ports.ts,
 * sqs-model.ts). Time jumps to the next event (a marker upload, a message becoming visible, a job
 * ending), so a day of 15-minute jobs takes seconds. Used by `npm run bench:burst` and the scenario tests.
 */
import { createTriggerLogger } from "../trigger/log";
import { createDispatcherHandler } from "../trigger/handler";
import { BACKFILL_MESSAGE_KIND, type BackfillRunMessage } from "../trigger/queue-message";
import { eventSourceMapping } from "../local/event-source-mapping";
import { MemoryJobs, MemoryStore, memoryQueue } from "./memory-ports";
import { SqsModel } from "./sqs-model";

export const SIM_BUCKET = "fuxi-sim-data";
const ACCOUNT = "000000000000";
const REGION = "cn-northwest-1";
export const SIM_QUEUES = { operational: "fuxi-sim-runs", backfill: "fuxi-sim-backfill", deadLetter: "fuxi-sim-runs-dlq" };
const url = (name: string) => `https://sqs.${REGION}.amazonaws.com.cn/${ACCOUNT}/${name}`;
const arn = (name: string) => `arn:aws-cn:sqs:${REGION}:${ACCOUNT}:${name}`;

export interface SimArrival {
  /** ms after the start of the simulation. */
  at: number;
  runId: string;
  lane: "operational" | "backfill";
  /** S3 delivers at least once: the same notification this many times (default 1). */
  deliveries?: number;
  /** The `.nc` lands this long after the marker (default: before it). */
  inputLateMs?: number;
  /** Leave the folder without input. */
  noInput?: boolean;
}

export interface SimOptions {
  arrivals: SimArrival[];
  quota: number;
  maxConcurrentJobs?: number;
  operationalReserve?: number;
  jobMs: number;
  env?: Record<string, string>;
  /** Replays the dead-letter queue once at this time (ms). */
  replayAt?: number;
  /** Stop after this much simulated time (default 30 days). */
  limitMs?: number;
}

export interface SimRun {
  runId: string;
  lane: "operational" | "backfill";
  arrivedAt: number;
  jobs: { name: string; createdAt: number; endsAt: number }[];
}

export interface SimResult {
  runs: SimRun[];
  ran: number;
  deadLetters: number;
  duplicateJobs: number;
  maxInProgress: number;
  resourceLimitAnswers: number;
  requestWrites: { max: number };
  makespanMs: number;
  invocations: number;
  receives: number;
  endedAt: number;
  store: MemoryStore;
  model: SqsModel;
}

export function simEnv(o: { maxConcurrentJobs: number; operationalReserve: number }): Record<string, string> {
  return {
    STACK_NAME: "sim",
    DATA_BUCKET: SIM_BUCKET,
    INPUT_PREFIX: "input/",
    OUTPUT_PREFIX: "output/",
    REQUESTS_PREFIX: "requests/",
    JOB_NAME_PREFIX: "fuxi-sim",
    MODEL_NAME: "fuxi-sim-model",
    CASCADE_STEPS: "20,20,20",
    OUTPUT_COMPRESSION: "none",
    TRANSFORM_INSTANCE_TYPE: "ml.g5.2xlarge",
    TRANSFORM_INSTANCE_COUNT: "1",
    INVOCATION_TIMEOUT_SECONDS: "3600",
    INVOCATION_MAX_RETRIES: "1",
    OPERATIONAL_QUEUE_URL: url(SIM_QUEUES.operational),
    BACKFILL_QUEUE_URL: url(SIM_QUEUES.backfill),
    DEAD_LETTER_QUEUE_URL: url(SIM_QUEUES.deadLetter),
    MAX_CONCURRENT_JOBS: String(o.maxConcurrentJobs),
    OPERATIONAL_RESERVE: String(o.operationalReserve),
    INPUT_WAIT_MINUTES: "30",
    OPERATIONAL_MAX_WAIT_MINUTES: "1440",
    BACKFILL_MAX_WAIT_MINUTES: "19440",
    RETRY_SECONDS: "60",
    MAX_RECEIVE_COUNT: "1000",
    ADMISSION_GRACE_SECONDS: "120",
  };
}

let sequencer = 0x10000;
function s3Event(runId: string, at: number, seq: string) {
  return JSON.stringify({
    Records: [{
      eventVersion: "2.1", eventSource: "aws:s3", awsRegion: REGION, eventTime: new Date(at).toISOString(), eventName: "ObjectCreated:Put",
      s3: { s3SchemaVersion: "1.0", configurationId: "sim", bucket: { name: SIM_BUCKET, arn: `arn:aws-cn:s3:::${SIM_BUCKET}` }, object: { key: `input/${runId}/_SUCCESS`, size: 0, eTag: "d41d8cd98f00b204e9800998ecf8427e", sequencer: seq } },
    }],
  });
}

export async function simulateRunQueue(o: SimOptions): Promise<SimResult> {
  const start = Date.UTC(2026, 11, 1, 0, 0, 0);
  const clock = { t: start };
  const now = () => clock.t;
  const model = new SqsModel(now);
  model.createQueue({ name: SIM_QUEUES.deadLetter, visibilityTimeoutSeconds: 360 });
  for (const name of [SIM_QUEUES.operational, SIM_QUEUES.backfill]) model.createQueue({ name, visibilityTimeoutSeconds: 360, deadLetter: { queue: SIM_QUEUES.deadLetter, maxReceiveCount: 1000 } });
  const store = new MemoryStore();
  const jobs = new MemoryJobs({ now, quota: o.quota, durationMs: () => o.jobMs });
  const env = o.env ?? simEnv({ maxConcurrentJobs: o.maxConcurrentJobs ?? o.quota, operationalReserve: o.operationalReserve ?? 1 });
  const logger = createTriggerLogger({ write: () => undefined });
  logger.level = "silent";
  const handler = createDispatcherHandler({ env, ports: { store, jobs, queue: memoryQueue(model) }, logger, now: () => new Date(clock.t) });
  const mappings = [SIM_QUEUES.operational, SIM_QUEUES.backfill].map((name) => eventSourceMapping({ model, queue: name, queueArn: arn(name), region: REGION, handler, maximumConcurrency: 2 }));

  type Pending = { at: number; fire: () => void };
  const pending: Pending[] = [];
  const runs = new Map<string, SimRun>();
  for (const a of o.arrivals) {
    runs.set(a.runId, { runId: a.runId, lane: a.lane, arrivedAt: start + a.at, jobs: [] });
    const inputAt = start + a.at + (a.inputLateMs ?? -1000);
    if (!a.noInput) pending.push({ at: inputAt, fire: () => store.upload(`input/${a.runId}/fuxi_input.nc`, "netcdf") });
    pending.push({
      at: start + a.at,
      fire: () => {
        store.upload(`input/${a.runId}/_SUCCESS`);
        const seq = (sequencer++).toString(16).toUpperCase().padStart(16, "0");
        if (a.lane === "operational") for (let i = 0; i < (a.deliveries ?? 1); i++) model.send(SIM_QUEUES.operational, s3Event(a.runId, start + a.at, seq));
        else {
          const message: BackfillRunMessage = { kind: BACKFILL_MESSAGE_KIND, version: 1, campaign: "sim", marker: { bucket: SIM_BUCKET, key: `input/${a.runId}/_SUCCESS`, sequencer: seq, eventTime: new Date(start + a.at).toISOString() } };
          for (let i = 0; i < (a.deliveries ?? 1); i++) model.send(SIM_QUEUES.backfill, JSON.stringify(message));
        }
      },
    });
  }
  if (o.replayAt !== undefined) {
    pending.push({
      at: start + o.replayAt,
      fire: () => {
        for (const m of model.receive(SIM_QUEUES.deadLetter, 1_000_000)) {
          const lane = m.messageAttributes["fuxi-lane"]?.StringValue === "backfill" ? SIM_QUEUES.backfill : SIM_QUEUES.operational;
          model.send(lane, m.body);
          model.delete(SIM_QUEUES.deadLetter, m.receiptHandle!);
        }
      },
    });
  }
  pending.sort((a, b) => a.at - b.at);
  const limit = start + (o.limitMs ?? 30 * 24 * 3600 * 1000);
  const queued = () => model.peek(SIM_QUEUES.operational).length + model.peek(SIM_QUEUES.backfill).length;
  while (clock.t <= limit) {
    while (pending.length > 0 && pending[0].at <= clock.t) pending.shift()!.fire();
    jobs.tick();
    await Promise.all(mappings.map((m) => m.drain()));
    const next = [pending[0]?.at, model.nextVisibleAt(), jobs.nextEnd()].filter((t): t is number => t !== undefined && t > clock.t);
    if (next.length === 0 || (queued() === 0 && pending.length === 0 && jobs.inProgress().length === 0)) break;
    clock.t = Math.min(...next);
  }
  jobs.tick();
  for (const job of jobs.jobs.values()) {
    const runId = String(job.input.Tags?.find((t) => t.Key === "fuxi:runId")?.Value);
    runs.get(runId)?.jobs.push({ name: job.name, createdAt: job.createdAt, endsAt: job.endsAt });
  }
  const list = [...runs.values()];
  const ends = list.flatMap((r) => r.jobs.map((j) => j.endsAt));
  const firstArrival = Math.min(...list.map((r) => r.arrivedAt));
  const requestWrites = [...store.writes.entries()].filter(([k]) => /^requests\/[^_]/.test(k)).map(([, n]) => n);
  return {
    runs: list,
    ran: list.filter((r) => r.jobs.some((j) => j.endsAt <= clock.t)).length,
    deadLetters: model.peek(SIM_QUEUES.deadLetter).length,
    duplicateJobs: list.reduce((sum, r) => sum + Math.max(0, r.jobs.length - 1), 0),
    maxInProgress: jobs.maxInProgress,
    resourceLimitAnswers: jobs.resourceLimitAnswers,
    requestWrites: { max: Math.max(0, ...requestWrites) },
    makespanMs: ends.length ? Math.max(...ends) - firstArrival : 0,
    invocations: mappings.reduce((s, m) => s + m.invocations(), 0),
    receives: 0,
    endedAt: clock.t - start,
    store,
    model,
  };
}
