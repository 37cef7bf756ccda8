/**
 * Admission under `fuxi:transform.maxConcurrentJobs`.
 *
 * Occupancy is counted from SageMaker (ListTransformJobs, InProgress, this stack's name prefix). Two
 * dispatchers running at once (the event source mapping runs at least two) could both see a free slot
 * and both start a job, so every start is serialised through an admission ledger in the data bucket:
 * ticket N+1 is created with `If-None-Match: *` (S3 lets exactly one writer create a key). The loser
 * re-counts and sees the winner's ticket. A ticket younger than the grace period counts as a running
 * job even before ListTransformJobs shows it, so nothing can start past the cap while SageMaker's
 * listing catches up. Ticket keys count down, so a listing returns the newest first.
 */
import type { TriggerConfig } from "./env";
import type { JobControl, QueueControl, RunStore } from "./ports";
import type { Lane } from "./queue-message";

export const TICKET_DIGITS = 12;
const TICKET_SPACE = 10 ** TICKET_DIGITS;
/** Newest tickets read per decision; more than can be younger than the grace period. */
const TICKETS_READ = 20;
const CLAIM_ATTEMPTS = 5;

export const admissionLedgerPrefix = (config: Pick<TriggerConfig, "requestsPrefix">): string => `${config.requestsPrefix}_admission/`;

export function ticketKey(ledgerPrefix: string, ticket: number): string {
  return `${ledgerPrefix}${String(TICKET_SPACE - 1 - ticket).padStart(TICKET_DIGITS, "0")}.json`;
}

export function ticketOfKey(ledgerPrefix: string, key: string): number | undefined {
  const m = new RegExp(`^\\d{${TICKET_DIGITS}}\\.json$`).exec(key.slice(ledgerPrefix.length));
  return key.startsWith(ledgerPrefix) && m ? TICKET_SPACE - 1 - Number(key.slice(ledgerPrefix.length, ledgerPrefix.length + TICKET_DIGITS)) : undefined;
}

export interface Ticket {
  ticket: number;
  jobName: string;
  lane: Lane;
  claimedAt: string;
}

/** How many InProgress jobs a run of this lane may find and still start. */
export function laneLimit(lane: Lane, maxConcurrentJobs: number, operationalReserve: number): number {
  if (lane === "operational") return maxConcurrentJobs;
  // With a cap of 1 no slot can be held back: backfills then yield to waiting operational runs instead.
  return maxConcurrentJobs - Math.min(operationalReserve, maxConcurrentJobs - 1);
}

/** The pure rule. `occupied`: InProgress jobs plus fresh tickets' jobs. */
export function admissionVerdict(p: {
  jobName: string;
  lane: Lane;
  occupied: ReadonlySet<string>;
  maxConcurrentJobs: number;
  operationalReserve: number;
  /** Operational messages queued or in flight (only asked for backfill runs). */
  operationalWaiting: number;
}): "running" | "full" | "yield" | "free" {
  if (p.occupied.has(p.jobName)) return "running";
  if (p.lane === "backfill" && p.operationalWaiting > 0) return "yield";
  return p.occupied.size < laneLimit(p.lane, p.maxConcurrentJobs, p.operationalReserve) ? "free" : "full";
}

export type Admission =
  /** Counted as running already (InProgress, or a fresh ticket of a concurrent delivery): create, idempotent by name. */
  | { kind: "running" }
  | { kind: "exists" }
  | { kind: "admitted"; ticket: number }
  | { kind: "wait"; reason: string; occupied: number; limit: number };

/** Caches for one batch of messages: one ListTransformJobs per batch (more would only be fresher). */
export interface AdmissionCache {
  inProgress?: Promise<string[]>;
  operationalWaiting?: Promise<number>;
}

export interface AdmissionDeps {
  config: TriggerConfig;
  store: RunStore;
  jobs: JobControl;
  queue: QueueControl;
  now: () => Date;
}

async function freshTickets(deps: AdmissionDeps, ledger: string): Promise<{ latest: number; fresh: Ticket[] }> {
  const keys = await deps.store.listKeys(ledger, TICKETS_READ);
  const numbered = keys.map((key) => ({ key, ticket: ticketOfKey(ledger, key) })).filter((t): t is { key: string; ticket: number } => t.ticket !== undefined);
  const latest = numbered.length > 0 ? numbered[0].ticket : 0;
  const fresh: Ticket[] = [];
  const oldest = deps.now().getTime() - deps.config.admissionGraceSeconds * 1000;
  for (const { key } of numbered) {
    const body = (await deps.store.getJson(key)) as Partial<Ticket> | undefined;
    if (!body || typeof body.jobName !== "string" || typeof body.claimedAt !== "string") continue;
    if (Date.parse(body.claimedAt) < oldest) break;
    fresh.push(body as Ticket);
  }
  return { latest, fresh };
}

export async function admit(deps: AdmissionDeps, cache: AdmissionCache, jobName: string, lane: Lane): Promise<Admission> {
  const { config } = deps;
  const ledger = admissionLedgerPrefix(config);
  const limit = laneLimit(lane, config.maxConcurrentJobs, config.operationalReserve);
  let occupiedCount = 0;
  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    const [{ latest, fresh }, inProgress, operationalWaiting] = await Promise.all([
      freshTickets(deps, ledger),
      (cache.inProgress ??= deps.jobs.listInProgress(config.jobNamePrefix)),
      lane === "backfill" ? (cache.operationalWaiting ??= deps.queue.depth(config.queues.operational)) : Promise.resolve(0),
    ]);
    // A fresh ticket's job that SageMaker does not list as InProgress: still being created (counts),
    // or already ended (does not; short jobs would otherwise hold a slot for the whole grace period).
    const unlisted = [...new Set(fresh.map((t) => t.jobName))].filter((name) => !inProgress.includes(name));
    const ended = new Set((await Promise.all(unlisted.map(async (name) => ({ name, status: await deps.jobs.status(name) })))).filter((j) => j.status !== undefined && j.status !== "InProgress").map((j) => j.name));
    const occupied = new Set([...inProgress, ...fresh.map((t) => t.jobName).filter((name) => !ended.has(name))]);
    occupiedCount = occupied.size;
    const verdict = admissionVerdict({ jobName, lane, occupied, maxConcurrentJobs: config.maxConcurrentJobs, operationalReserve: config.operationalReserve, operationalWaiting });
    if (verdict === "running") return { kind: "running" };
    if (verdict === "yield") return { kind: "wait", reason: `${operationalWaiting} operational run(s) waiting go first`, occupied: occupied.size, limit };
    if (verdict === "full") return { kind: "wait", reason: `${occupied.size} of ${limit} ${lane} slot(s) in use`, occupied: occupied.size, limit };
    if ((await deps.jobs.status(jobName)) !== undefined) return { kind: "exists" };
    const ticket: Ticket = { ticket: latest + 1, jobName, lane, claimedAt: deps.now().toISOString() };
    if (await deps.store.createJson(ticketKey(ledger, ticket.ticket), ticket)) {
      // Later decisions in this batch must count this job although the cached listing predates it.
      const listed = await cache.inProgress;
      cache.inProgress = Promise.resolve([...listed, jobName]);
      return { kind: "admitted", ticket: ticket.ticket };
    }
    // Another dispatcher took ticket N+1 at the same moment: count again, its job included.
  }
  return { kind: "wait", reason: `admission contended ${CLAIM_ATTEMPTS} times`, occupied: occupiedCount, limit };
}
