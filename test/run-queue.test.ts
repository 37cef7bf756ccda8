import assert from "node:assert/strict";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { admissionLedgerPrefix, admissionVerdict, laneLimit, ticketKey, ticketOfKey } from "../trigger/admission";
import { waitDelaySeconds } from "../trigger/dispatcher";
import { createDispatcherHandler } from "../trigger/handler";
import { parseQueueBody } from "../trigger/queue-message";
import { MemoryJobs, MemoryStore, memoryQueue } from "../tools/memory-ports";
import { simEnv, simulateRunQueue, SIM_BUCKET, SIM_QUEUES, type SimArrival, type SimRun } from "../tools/run-queue-sim";
import { SqsModel } from "../tools/sqs-model";
import { startLocalS3, type LocalS3 } from "../tools/local-s3";
import { BUCKET, captureLogs, eventOf, fakeSageMaker, fakeSqs, markerRecord, sqsEventOf, TEST_ENV } from "./trigger-fixtures";

const MIN = 60_000;
const JOB = 15 * MIN;
const ops = (n: number, prefix = "op", spreadMs = MIN): SimArrival[] => Array.from({ length: n }, (_, i) => ({ at: Math.floor((i * spreadMs) / n), runId: `${prefix}${String(i).padStart(3, "0")}`, lane: "operational" }));

/** The most jobs of the given runs running at one instant. */
function peakConcurrency(runs: SimRun[]): number {
  const edges = runs.flatMap((r) => r.jobs.flatMap((j) => [[j.createdAt, 1], [j.endsAt, -1]] as const)).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0, peak = 0;
  for (const [, d] of edges) peak = Math.max(peak, (now += d));
  return peak;
}

describe("run queue: rules", () => {
  it("ticket keys list newest first and round-trip", () => {
    const ledger = admissionLedgerPrefix({ requestsPrefix: "requests/" });
    assert.equal(ledger, "requests/_admission/");
    const keys = [1, 2, 10, 11].map((t) => ticketKey(ledger, t));
    assert.deepEqual([...keys].sort(), [...keys].reverse(), "a higher ticket sorts first");
    assert.deepEqual(keys.map((k) => ticketOfKey(ledger, k)), [1, 2, 10, 11]);
    assert.equal(ticketOfKey(ledger, "requests/_admission/junk.json"), undefined);
  });

  it("lanes: operational runs use the whole cap, backfills leave the reserve (never the last slot)", () => {
    assert.equal(laneLimit("operational", 2, 1), 2);
    assert.equal(laneLimit("backfill", 2, 1), 1);
    assert.equal(laneLimit("backfill", 4, 2), 2);
    assert.equal(laneLimit("backfill", 1, 1), 1, "with a cap of 1 backfills still run (and yield to waiting operational runs)");
    const base = { jobName: "j", maxConcurrentJobs: 2, operationalReserve: 1, operationalWaiting: 0 };
    assert.equal(admissionVerdict({ ...base, lane: "operational", occupied: new Set(["a"]) }), "free");
    assert.equal(admissionVerdict({ ...base, lane: "backfill", occupied: new Set(["a"]) }), "full");
    assert.equal(admissionVerdict({ ...base, lane: "backfill", occupied: new Set() }), "free");
    assert.equal(admissionVerdict({ ...base, lane: "backfill", occupied: new Set(), operationalWaiting: 1 }), "yield");
    assert.equal(admissionVerdict({ ...base, lane: "operational", occupied: new Set(["j", "b"]) }), "running");
  });

  it("waits: the base interval, never far past the deadline", () => {
    assert.equal(waitDelaySeconds({ baseSeconds: 60, ageSeconds: 0, maxWaitSeconds: 86400 }), 60);
    assert.equal(waitDelaySeconds({ baseSeconds: 60, ageSeconds: 86380, maxWaitSeconds: 86400 }), 21);
    assert.equal(waitDelaySeconds({ baseSeconds: 60, ageSeconds: 90000, maxWaitSeconds: 86400 }), 60);
  });

  it("message bodies: S3 events, test events, backfill runs, and a clear fault for anything else", () => {
    assert.equal(parseQueueBody(JSON.stringify(eventOf(markerRecord("input/a/_SUCCESS")))).kind, "s3");
    assert.equal(parseQueueBody(JSON.stringify({ Event: "s3:TestEvent" })).kind, "test-event");
    assert.equal(parseQueueBody(JSON.stringify({ kind: "fuxi.backfill-run", version: 1, campaign: "c", marker: { bucket: "b", key: "input/a/_SUCCESS", eventTime: "2026-01-01T00:00:00Z" } })).kind, "backfill");
    assert.match((parseQueueBody(JSON.stringify({ kind: "fuxi.backfill-run", version: 1 })) as { reason: string }).reason, /malformed backfill message \(campaign/);
    assert.deepEqual(parseQueueBody("not json"), { kind: "invalid", reason: "message body is not JSON" });
  });
});

describe("run queue: scenarios on a simulated clock (real dispatcher, emulated SQS/ESM, in-memory S3 and SageMaker)", function () {
  this.timeout(120_000);

  it("20 markers in a minute with a quota of 2: all run, 2 at a time, in about ceil(20/2) job durations", async () => {
    const r = await simulateRunQueue({ arrivals: ops(20), quota: 2, jobMs: JOB });
    assert.equal(r.ran, 20);
    assert.equal(r.deadLetters, 0);
    assert.equal(r.duplicateJobs, 0);
    assert.equal(r.maxInProgress, 2);
    assert.ok(r.makespanMs / (10 * JOB) <= 1.15, `makespan ${r.makespanMs / JOB} job durations`);
  });

  it("a cap below the quota holds; a quota below the cap answers ResourceLimitExceeded, which means wait", async () => {
    const capped = await simulateRunQueue({ arrivals: ops(6), quota: 5, maxConcurrentJobs: 2, jobMs: JOB });
    assert.equal(capped.ran, 6);
    assert.equal(capped.maxInProgress, 2, "never more InProgress than fuxi:transform.maxConcurrentJobs");
    const quotaBound = await simulateRunQueue({ arrivals: ops(6), quota: 1, maxConcurrentJobs: 3, jobMs: JOB });
    assert.equal(quotaBound.ran, 6);
    assert.equal(quotaBound.deadLetters, 0);
    assert.ok(quotaBound.resourceLimitAnswers > 0, "the quota was hit");
    assert.equal(quotaBound.maxInProgress, 1);
  });

  it("a marker 30 s before its .nc waits and starts; one whose .nc never comes is rejected after inputWaitMinutes", async () => {
    const r = await simulateRunQueue({ arrivals: [{ at: 0, runId: "late", lane: "operational", inputLateMs: 30_000 }, { at: 0, runId: "never", lane: "operational", noInput: true }], quota: 2, jobMs: JOB });
    const late = r.runs.find((x) => x.runId === "late")!;
    assert.equal(late.jobs.length, 1);
    assert.ok(late.jobs[0].createdAt - late.arrivedAt >= 30_000 && late.jobs[0].createdAt - late.arrivedAt <= 70_000, "started within a re-check of the input landing");
    assert.equal(r.runs.find((x) => x.runId === "never")!.jobs.length, 0);
    assert.equal(r.deadLetters, 1);
    const failed = await r.store.getJson("output/never/_FAILED.json") as { stage: string; reason: string };
    assert.equal(failed.stage, "input-folder");
    assert.match(failed.reason, /found 0 \(30 min after the marker\)/);
  });

  it("5 concurrent duplicate deliveries of one marker: one job, the request object written once", async () => {
    const r = await simulateRunQueue({ arrivals: [{ at: 0, runId: "dup", lane: "operational", deliveries: 5 }, ...ops(3, "other")], quota: 2, jobMs: JOB });
    assert.equal(r.ran, 4);
    assert.equal(r.duplicateJobs, 0);
    assert.equal(r.requestWrites.max, 1);
  });

  it("a campaign of 50 backfills and one operational marker in the middle: the marker starts at once, the backfills keep the reserve free", async () => {
    const arrivals: SimArrival[] = [...Array.from({ length: 50 }, (_, i) => ({ at: i * 100, runId: `bf${i}`, lane: "backfill" as const })), { at: 200 * MIN, runId: "cycle", lane: "operational" }];
    const r = await simulateRunQueue({ arrivals, quota: 2, operationalReserve: 1, jobMs: JOB });
    assert.equal(r.ran, 51);
    assert.equal(r.duplicateJobs, 0);
    assert.equal(r.deadLetters, 0);
    const cycle = r.runs.find((x) => x.runId === "cycle")!;
    assert.ok((cycle.jobs[0].createdAt - cycle.arrivedAt) / JOB <= 0.2, `operational wait ${(cycle.jobs[0].createdAt - cycle.arrivedAt) / JOB} job durations`);
    assert.equal(peakConcurrency(r.runs.filter((x) => x.lane === "backfill")), 1, "backfills leave operationalReserve = 1 of the cap free");

    // With a cap of 1 nothing can be reserved: the marker waits for the running backfill only, not for the campaign.
    const tight = await simulateRunQueue({ arrivals, quota: 1, operationalReserve: 1, jobMs: JOB });
    const wait = (tight.runs.find((x) => x.runId === "cycle")!.jobs[0].createdAt - (tight.runs.find((x) => x.runId === "cycle")!.arrivedAt)) / JOB;
    assert.ok(wait <= 1.2, `operational wait ${wait} job durations with a cap of 1`);
  });

  it("a run that cannot start within the maximum wait (no job of the stack starts) goes to the dead-letter queue with _FAILED.json", async () => {
    const r = await simulateRunQueue({ arrivals: ops(2, "stuck", 0), quota: 1, jobMs: 48 * 3600_000, limitMs: 3 * 24 * 3600_000 });
    assert.equal(r.deadLetters, 1);
    const rejected = r.runs.find((x) => x.jobs.length === 0)!;
    const failed = await r.store.getJson(`output/${rejected.runId}/_FAILED.json`) as { stage: string; reason: string };
    assert.equal(failed.stage, "queue-wait");
    assert.match(failed.reason, /maximum 1440 min; no job of the stack started in the last 135 min/);
  });

  it("a replay of dead-lettered runs starts each once, and never a second job", async () => {
    // The input lands 2 h late (rejected after 30 min); the operator replays the dead-letter queue at 3 h.
    const arrivals: SimArrival[] = [{ at: 0, runId: "replayed", lane: "operational", inputLateMs: 2 * 3600_000 }, { at: 0, runId: "fine", lane: "operational", deliveries: 2 }];
    const r = await simulateRunQueue({ arrivals, quota: 2, jobMs: JOB, replayAt: 3 * 3600_000 });
    assert.equal(r.deadLetters, 0, "the replay emptied the dead-letter queue");
    assert.equal(r.ran, 2);
    assert.equal(r.duplicateJobs, 0);
    assert.ok(r.runs.find((x) => x.runId === "replayed")!.jobs[0].createdAt - r.runs[0].arrivedAt >= 3 * 3600_000);
  });

  it("AccessDenied on the folder listing is loud: _FAILED.json, the RunsNotStarted metric and a dead letter", async () => {
    const model = new SqsModel();
    for (const name of Object.values(SIM_QUEUES)) model.createQueue({ name });
    const store = new MemoryStore();
    store.listRunFolder = async () => { throw Object.assign(new Error("Access Denied"), { name: "AccessDenied", $fault: "client", $metadata: { httpStatusCode: 403 } }); };
    const logs = captureLogs();
    const handle = createDispatcherHandler({ env: simEnv({ maxConcurrentJobs: 2, operationalReserve: 1 }), ports: { store, jobs: new MemoryJobs({ now: Date.now, quota: 2, durationMs: () => JOB }), queue: memoryQueue(model) }, logger: logs.logger });
    const event = { Records: [{ eventName: "ObjectCreated:Put", eventTime: new Date().toISOString(), s3: { bucket: { name: SIM_BUCKET }, object: { key: "input/denied/_SUCCESS", sequencer: "0A" } } }] };
    const result = await handle(sqsEventOf(event, { queueArn: `arn:aws-cn:sqs:cn-northwest-1:000000000000:${SIM_QUEUES.operational}`, sentAt: new Date() }));
    assert.deepEqual(result.messages[0].outcomes.map((o) => o.decision), ["failed"]);
    assert.deepEqual(result.batchItemFailures, []);
    const failed = await store.getJson("output/denied/_FAILED.json") as { stage: string; reason: string };
    assert.equal(failed.stage, "dispatch");
    assert.match(failed.reason, /AccessDenied: Access Denied/);
    assert.equal(logs.lines.find((l) => l.decision === "failed")!.RunsNotStarted, 1);
    const [letter] = model.peek(SIM_QUEUES.deadLetter);
    assert.equal(letter.messageAttributes["fuxi-stage"].StringValue, "dispatch");
  });
});

describe("run queue: exactly once over the wire (real SDK against loopback S3 with conditional writes)", function () {
  this.timeout(60_000);
  let s3: LocalS3;
  before(async () => { s3 = await startLocalS3({ buckets: [BUCKET] }); });
  after(async () => { await s3.stop(); });

  it("5 concurrent duplicate deliveries: one job, one request PUT, the others duplicates", async () => {
    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "input/conc/fuxi_input.nc", Body: "nc" }));
    const requestPuts: string[] = [];
    s3.onObjectCreated((r) => { if (r.s3.object.key.startsWith("requests/fuxi")) requestPuts.push(r.s3.object.key); });
    const sageMaker = fakeSageMaker();
    const handle = createDispatcherHandler({ env: { ...TEST_ENV, MAX_CONCURRENT_JOBS: "2" }, s3: s3.client, sageMaker: sageMaker.client, sqs: fakeSqs().client, logger: captureLogs().logger });
    const record = markerRecord("input/conc/_SUCCESS");
    const deliver = () => handle(sqsEventOf(eventOf(record), { sentAt: new Date() }));
    const results = await Promise.all(Array.from({ length: 5 }, deliver));
    const decisions = results.flatMap((r) => r.messages.flatMap((m) => m.outcomes.map((o) => o.decision)));
    assert.equal(decisions.filter((d) => d === "started").length, 1, decisions.join(", "));
    // A delivery that lost the ledger race several times waits in the queue, and one that met a
    // transient S3 fault (a loaded machine makes both likely) is retried; delivered again, it finds
    // the job: a duplicate, never a second job.
    const waited = decisions.filter((d) => d === "waiting" || d === "retry").length;
    assert.equal(decisions.filter((d) => d === "duplicate").length + waited, 4, decisions.join(", "));
    for (let i = 0; i < waited; i++) {
      assert.deepEqual((await deliver()).messages.flatMap((m) => m.outcomes.map((o) => o.decision)), ["duplicate"]);
    }
    assert.equal(sageMaker.jobs.size, 1);
    assert.equal(requestPuts.length, 1, "the request object was written once (If-None-Match: *)");
    const tickets = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: ticketKey("requests/_admission/", 1) }));
    assert.equal(JSON.parse(await tickets.Body!.transformToString()).jobName, [...sageMaker.jobs.keys()][0]);
  });

  it("two runs admitted concurrently under a cap of 1: one starts, the other waits (the ledger serialises them)", async () => {
    for (const id of ["capA", "capB"]) await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `input/${id}/fuxi_input.nc`, Body: "nc" }));
    const sageMaker = fakeSageMaker();
    const sqs = fakeSqs();
    const now = new Date("2030-01-01T00:00:00Z");
    const handle = createDispatcherHandler({ env: { ...TEST_ENV, MAX_CONCURRENT_JOBS: "1" }, s3: s3.client, sageMaker: sageMaker.client, sqs: sqs.client, logger: captureLogs().logger, now: () => now });
    const results = await Promise.all(["capA", "capB"].map((id) => handle(sqsEventOf(eventOf(markerRecord(`input/${id}/_SUCCESS`)), { sentAt: now }))));
    const decisions = results.flatMap((r) => r.messages.flatMap((m) => m.outcomes.map((o) => o.decision))).sort();
    assert.deepEqual(decisions, ["started", "waiting"]);
    assert.equal(sageMaker.jobs.size, 1);
    assert.equal(sqs.delays().length, 1, "the waiting run's message is made visible again later");
  });
});
