/**
 * What forecasts cost and how much storage they hold: pure arithmetic, no AWS
 * calls and no built-in prices (prices differ by region and change; the user
 * sets them in `fuxi:cost`). Used by the stack outputs (index.ts), `npm run runs`
 * and `npm run campaign`. The formulas are written out in docs/cost.md (batch) and docs/serving.md (async).
 */
import type { ServingMode } from "./config";
import type { WarmWindow } from "./components/warmWindows";

/** Storage classes the output can be in: where it is written, and the lifecycle targets. */
export const STORAGE_CLASSES = ["STANDARD", "STANDARD_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"] as const;
export type StorageClass = (typeof STORAGE_CLASSES)[number];
export const ARCHIVE_CLASSES = ["GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"] as const;
export type ArchiveClass = (typeof ARCHIVE_CLASSES)[number];
export const DEFAULT_ARCHIVE_CLASS: ArchiveClass = "GLACIER_IR";

/**
 * Minimum storage duration S3 bills per object (S3 User Guide, "Comparing the
 * Amazon S3 storage classes"): an object deleted or transitioned earlier is
 * billed for the rest of it.
 */
export const MINIMUM_STORAGE_DAYS: Readonly<Record<StorageClass, number>> = { STANDARD: 0, STANDARD_IA: 30, GLACIER_IR: 90, GLACIER: 90, DEEP_ARCHIVE: 180 };
/** S3 lifecycle: objects move to STANDARD_IA at the earliest 30 days after creation. */
export const INFREQUENT_ACCESS_MIN_AGE_DAYS = 30;
/** S3 lifecycle: an object stays in STANDARD_IA at least 30 days before a transition to an archive class. */
export const ARCHIVE_AFTER_INFREQUENT_ACCESS_MIN_DAYS = 30;

/** AWS prices storage per "GB-month" with GB = 2^30 bytes (S3 FAQ: byte-hours / 1,073,741,824). */
export const BYTES_PER_GB = 2 ** 30;
/** The average month (365.25 / 12 days). */
export const DAYS_PER_MONTH = 365.25 / 12;

/**
 * One forecast step on the full 721 x 1440 grid, compression "none", as the
 * runtime's encoder writes it (measured 2026-12-02, chunks written directly: 290,746,611 bytes, of which
 * 290,707,200 are the 70 x 721 x 1440 float32 values). gzip output depends on
 * the fields; only a run's manifest knows its size.
 */
export const FULL_GRID_STEP_BYTES_UNCOMPRESSED = 290_746_611;

export interface OutputRetention {
  /** Transition to STANDARD_IA this many days after the object was written. */
  infrequentAccessAfterDays?: number;
  /** Transition to `archiveClass` this many days after the object was written. */
  archiveAfterDays?: number;
  archiveClass?: ArchiveClass;
  /** Expire (delete marker; the noncurrent version goes `noncurrentDays` later) this many days after it was written. */
  expireAfterDays?: number;
}

/** `fuxi:cost`: prices in one currency. */
export interface Prices {
  currency: string;
  /** Price per instance-hour, by SageMaker instance type (Batch Transform column of the pricing page). */
  instanceHour: Readonly<Record<string, number>>;
  /**
   * Price per instance-hour of an endpoint (real-time and asynchronous inference column of the pricing
   * page), by instance type: what serving.mode "async" is billed. Absent from the costModel output of a
   * stack deployed before the key existed.
   */
  endpointInstanceHour?: Readonly<Record<string, number>>;
  /** Price per GB-month (GB = 2^30 bytes), by storage class. */
  storageGbMonth: Readonly<Partial<Record<StorageClass, number>>>;
}

/** The unknown half of an estimate: which prices are missing. */
export const COST_UNKNOWN = "cost unknown: set fuxi:cost";

export function costUnknownMessage(missing: readonly string[]): string {
  return missing.length === 0 ? `${COST_UNKNOWN} (docs/cost.md)` : `${COST_UNKNOWN} (${missing.join(", ")}; docs/cost.md)`;
}

/** One stretch of an output object's life in one storage class, [fromDay, toDay). */
export interface Residence {
  storageClass: StorageClass;
  fromDay: number;
  /** Infinity when nothing ends it. */
  toDay: number;
  /** false for the noncurrent version left behind by an expiration (versioned bucket). */
  current: boolean;
}

/**
 * Where a run's output lives, day by day, under `retention`: STANDARD from day
 * 0, then STANDARD_IA, then the archive class, each from its transition day;
 * after an expiration, the version stays `noncurrentDays` more (the bucket is
 * versioned and its noncurrent versions expire after that) in the class it was in.
 */
export function outputResidence(retention: OutputRetention | undefined, noncurrentDays: number): Residence[] {
  const r = retention ?? {};
  const expire = r.expireAfterDays ?? Infinity;
  const starts: { storageClass: StorageClass; day: number }[] = [{ storageClass: "STANDARD", day: 0 }];
  if (r.infrequentAccessAfterDays !== undefined) starts.push({ storageClass: "STANDARD_IA", day: r.infrequentAccessAfterDays });
  if (r.archiveAfterDays !== undefined) starts.push({ storageClass: r.archiveClass ?? DEFAULT_ARCHIVE_CLASS, day: r.archiveAfterDays });
  starts.sort((a, b) => a.day - b.day);
  const phases: Residence[] = [];
  for (const [i, s] of starts.entries()) {
    if (s.day >= expire) break;
    const next = Math.min(starts[i + 1]?.day ?? Infinity, expire);
    if (next > s.day) phases.push({ storageClass: s.storageClass, fromDay: s.day, toDay: next, current: true });
  }
  if (Number.isFinite(expire) && noncurrentDays > 0) {
    const last = phases.at(-1)?.storageClass ?? "STANDARD";
    phases.push({ storageClass: last, fromDay: expire, toDay: expire + noncurrentDays, current: false });
  }
  return phases;
}

/** Days each storage class holds one run's output (current and noncurrent together). */
export function daysByClass(phases: readonly Residence[]): Partial<Record<StorageClass, number>> {
  const days: Partial<Record<StorageClass, number>> = {};
  for (const p of phases) days[p.storageClass] = (days[p.storageClass] ?? 0) + (p.toDay - p.fromDay);
  return days;
}

/** Days S3 bills each class for one object: its days there, but at least the class's minimum. */
export function billedDaysByClass(phases: readonly Residence[]): Partial<Record<StorageClass, number>> {
  const billed: Partial<Record<StorageClass, number>> = {};
  for (const [c, d] of Object.entries(daysByClass(phases)) as [StorageClass, number][]) billed[c] = Math.max(d, MINIMUM_STORAGE_DAYS[c]);
  return billed;
}

export interface StorageEstimate {
  /** Bytes held per class; Infinity in the last class when nothing expires. */
  bytesByClass: Partial<Record<StorageClass, number>>;
  totalBytes: number;
  /** False when outputs never expire: storage grows forever by `growthBytesPerDay`. */
  bounded: boolean;
  growthBytesPerDay: number;
}

/**
 * Storage held `afterDays` days after a cadence of `runsPerDay` runs of
 * `bytesPerRun` each started (Infinity: the steady state). Each class holds
 * runsPerDay x bytesPerRun x (days its phases overlap [0, afterDays]).
 */
export function storageHeld(opts: { bytesPerRun: number; runsPerDay: number; retention?: OutputRetention; noncurrentDays: number; afterDays?: number }): StorageEstimate {
  const horizon = opts.afterDays ?? Infinity;
  const perDay = opts.bytesPerRun * opts.runsPerDay;
  const phases = outputResidence(opts.retention, opts.noncurrentDays);
  const bytesByClass: Partial<Record<StorageClass, number>> = {};
  for (const p of phases) {
    const days = Math.max(0, Math.min(p.toDay, horizon) - p.fromDay);
    if (days === 0) continue;
    bytesByClass[p.storageClass] = (bytesByClass[p.storageClass] ?? 0) + (days === Infinity ? (perDay > 0 ? Infinity : 0) : perDay * days);
  }
  const bounded = phases.every((p) => Number.isFinite(p.toDay));
  const totalBytes = Object.values(bytesByClass).reduce((a, b) => a + b, 0);
  return { bytesByClass, totalBytes, bounded, growthBytesPerDay: bounded ? 0 : perDay };
}

export interface Money {
  /** undefined when a price is missing (`missing` says which). */
  amount: number | undefined;
  currency: string | undefined;
  missing: string[];
}

/** The `fuxi:cost` table that prices a serving mode's instances: Batch Transform jobs, or the async endpoint's instances. */
export const INSTANCE_PRICE_TABLE = { batch: "instanceHour", async: "endpointInstanceHour" } as const satisfies Record<ServingMode, keyof Prices>;
const priceKeyInstance = (type: string, serving: ServingMode) => `fuxi:cost.${INSTANCE_PRICE_TABLE[serving]}["${type}"]`;
const priceKeyStorage = (c: StorageClass) => `fuxi:cost.storageGbMonth.${c}`;

function sumMoney(parts: Money[], currency: string | undefined): Money {
  const missing = [...new Set(parts.flatMap((p) => p.missing))];
  return { amount: missing.length ? undefined : parts.reduce((a, p) => a + (p.amount ?? 0), 0), currency, missing };
}

/**
 * Instance cost: seconds x instances x price per instance-hour (SageMaker bills per second), at the
 * serving mode's price (default batch: the Batch Transform price).
 */
export function instanceCost(opts: { seconds: number; instanceType: string; instanceCount: number; serving?: ServingMode }, prices: Prices | undefined): Money {
  const serving = opts.serving ?? "batch";
  const price = prices?.[INSTANCE_PRICE_TABLE[serving]]?.[opts.instanceType];
  if (price === undefined) return { amount: undefined, currency: prices?.currency, missing: [priceKeyInstance(opts.instanceType, serving)] };
  return { amount: (opts.seconds / 3600) * opts.instanceCount * price, currency: prices!.currency, missing: [] };
}

/**
 * What storing `bytes` of output costs over its whole life under `retention`:
 * per class, GB x billed days / DAYS_PER_MONTH x price per GB-month. Infinite
 * (amount Infinity) when it never expires.
 */
export function lifetimeStorageCost(bytes: number, retention: OutputRetention | undefined, noncurrentDays: number, prices: Prices | undefined): Money {
  const billed = billedDaysByClass(outputResidence(retention, noncurrentDays));
  const parts: Money[] = (Object.entries(billed) as [StorageClass, number][]).map(([c, days]) => {
    const price = prices?.storageGbMonth[c];
    if (price === undefined) return { amount: undefined, currency: prices?.currency, missing: [priceKeyStorage(c)] };
    return { amount: bytes === 0 || price === 0 ? 0 : (bytes / BYTES_PER_GB) * (days / DAYS_PER_MONTH) * price, currency: prices!.currency, missing: [] };
  });
  return sumMoney(parts, prices?.currency);
}

/**
 * Storage cost per month `afterDays` after a cadence started (Infinity: the
 * steady state, which only exists when outputs expire). In the steady state it
 * is runsPerDay x DAYS_PER_MONTH x lifetimeStorageCost(bytesPerRun), minimum
 * durations included; before it, the classes' bytes held x their prices.
 */
export function monthlyStorageCost(opts: { bytesPerRun: number; runsPerDay: number; retention?: OutputRetention; noncurrentDays: number; afterDays?: number }, prices: Prices | undefined): Money {
  const held = storageHeld(opts);
  if (opts.afterDays === undefined || opts.afterDays === Infinity) {
    if (!held.bounded) {
      const usedClasses = Object.keys(held.bytesByClass) as StorageClass[];
      const missing = usedClasses.filter((c) => prices?.storageGbMonth[c] === undefined).map(priceKeyStorage);
      return { amount: missing.length ? undefined : Infinity, currency: prices?.currency, missing };
    }
    const perRun = lifetimeStorageCost(opts.bytesPerRun, opts.retention, opts.noncurrentDays, prices);
    return { ...perRun, amount: perRun.amount === undefined ? undefined : perRun.amount * opts.runsPerDay * DAYS_PER_MONTH };
  }
  const parts: Money[] = (Object.entries(held.bytesByClass) as [StorageClass, number][]).map(([c, bytes]) => {
    const price = prices?.storageGbMonth[c];
    if (price === undefined) return { amount: undefined, currency: prices?.currency, missing: [priceKeyStorage(c)] };
    return { amount: (bytes / BYTES_PER_GB) * price, currency: prices!.currency, missing: [] };
  });
  return sumMoney(parts, prices?.currency);
}

/** Bytes a run writes: its steps x the bytes of one step (uncompressed unless measured). */
export function expectedRunBytes(steps: number, stepBytes = FULL_GRID_STEP_BYTES_UNCOMPRESSED): number {
  return steps * stepBytes;
}

export interface RunUsageForCost {
  instanceType: string;
  instanceCount: number;
  /** Billed seconds: the job's TransformEndTime - TransformStartTime; async: the invocation's processing time. */
  seconds: number;
  /** Which price applies (default batch). */
  serving?: ServingMode;
  bytesWritten: number;
}

export interface RunCost {
  instance: Money;
  /** The output's storage over its whole retention. */
  storage: Money;
  total: Money;
}

/** One run: its instance time plus the lifetime storage of what it wrote. */
export function runCost(run: RunUsageForCost, storage: { retention?: OutputRetention; noncurrentDays: number }, prices: Prices | undefined): RunCost {
  const instance = instanceCost(run, prices);
  const stored = lifetimeStorageCost(run.bytesWritten, storage.retention, storage.noncurrentDays, prices);
  return { instance, storage: stored, total: sumMoney([instance, stored], prices?.currency) };
}

export interface CampaignEstimateInput {
  runs: number;
  /** Billed seconds per run: measured from earlier runs, or the assumption. */
  secondsPerRun: number;
  /** Where `secondsPerRun` came from, printed with the estimate. */
  secondsBasis: string;
  bytesPerRun: number;
  bytesBasis: string;
  instanceType: string;
  instanceCount: number;
  /** Which price applies (default batch). */
  serving?: ServingMode;
  retention?: OutputRetention;
  noncurrentDays: number;
}

export interface CampaignEstimate {
  runs: number;
  serving: ServingMode;
  instanceHours: number;
  bytes: number;
  instance: Money;
  /** The campaign's output over its whole retention (Infinity when it never expires). */
  storageLifetime: Money;
  /** Its output's storage for the first month, before any transition. */
  storageFirstMonth: Money;
  total: Money;
  basis: { seconds: string; bytes: string };
}

export function campaignEstimate(input: CampaignEstimateInput, prices: Prices | undefined): CampaignEstimate {
  const seconds = input.runs * input.secondsPerRun;
  const bytes = input.runs * input.bytesPerRun;
  const serving = input.serving ?? "batch";
  const instance = instanceCost({ seconds, instanceType: input.instanceType, instanceCount: input.instanceCount, serving }, prices);
  const storageLifetime = lifetimeStorageCost(bytes, input.retention, input.noncurrentDays, prices);
  const standard = prices?.storageGbMonth.STANDARD;
  const storageFirstMonth: Money =
    standard === undefined
      ? { amount: undefined, currency: prices?.currency, missing: [priceKeyStorage("STANDARD")] }
      : { amount: (bytes / BYTES_PER_GB) * standard, currency: prices!.currency, missing: [] };
  return {
    runs: input.runs,
    serving,
    instanceHours: (seconds / 3600) * input.instanceCount,
    bytes,
    instance,
    storageLifetime,
    storageFirstMonth,
    total: sumMoney([instance, storageLifetime], prices?.currency),
    basis: { seconds: input.secondsBasis, bytes: input.bytesBasis },
  };
}

export interface DailyEstimate {
  /** runsPerDay x instance cost of one run. */
  instance: Money;
  /** async: the warm windows' instance-minutes, billed whether or not a run comes. */
  warm?: Money;
  /** The steady-state monthly storage cost / DAYS_PER_MONTH (Infinity when outputs never expire). */
  storage: Money;
  total: Money;
}

/**
 * One day of the cadence: its runs' instance time plus a day's share of the steady-state storage; async
 * (`warmMinutesPerDay` given) also the warm windows' minutes, all at the endpoint price.
 */
export function dailyEstimate(opts: { runsPerDay: number; secondsPerRun: number; instanceType: string; instanceCount: number; serving?: ServingMode; warmMinutesPerDay?: number; bytesPerRun: number; retention?: OutputRetention; noncurrentDays: number }, prices: Prices | undefined): DailyEstimate {
  const perRun = instanceCost({ seconds: opts.secondsPerRun, instanceType: opts.instanceType, instanceCount: opts.instanceCount, serving: opts.serving }, prices);
  const instance = { ...perRun, amount: perRun.amount === undefined ? undefined : perRun.amount * opts.runsPerDay };
  const warm = opts.warmMinutesPerDay === undefined ? undefined : instanceCost({ seconds: opts.warmMinutesPerDay * 60, instanceType: opts.instanceType, instanceCount: 1, serving: opts.serving }, prices);
  const monthly = monthlyStorageCost(opts, prices);
  const storage = { ...monthly, amount: monthly.amount === undefined ? undefined : monthly.amount / DAYS_PER_MONTH };
  return { instance, ...(warm ? { warm } : {}), storage, total: sumMoney([instance, ...(warm ? [warm] : []), storage], prices?.currency) };
}

/** Instance-minutes a day the warm windows hold: one instance per window, for each of its cycle hours. */
export function warmMinutesPerDay(windows: readonly Pick<WarmWindow, "cycleHoursUtc" | "durationMinutes">[]): number {
  return windows.reduce((a, w) => a + w.cycleHoursUtc.length * w.durationMinutes, 0);
}

/** Start-up before the container runs (instance, image pull, model download): users report about 8 minutes. */
export const ASSUMED_STARTUP_SECONDS = 600;

/**
 * Billed seconds to assume per run before any run of the stack was measured: an
 * upper bound, the start-up plus one whole invocation timeout (a run that takes
 * longer fails).
 */
export function assumedSecondsPerRun(invocationTimeoutSeconds: number): { seconds: number; why: string } {
  return {
    seconds: ASSUMED_STARTUP_SECONDS + invocationTimeoutSeconds,
    why: `${formatDuration(ASSUMED_STARTUP_SECONDS)} start-up + the ${formatDuration(invocationTimeoutSeconds)} invocation timeout, an upper bound`,
  };
}

/** What `n` measured times are, after "mean " in the basis (default: "of n measured runs"). */
const MEASURED_RUNS = (n: number) => `of ${n} measured run${n === 1 ? "" : "s"}`;

/** Mean of measured billed seconds, or the assumption when none were measured. */
export function expectedSecondsPerRun(measured: readonly number[], assumed: { seconds: number; why?: string }, measuredWhat: (n: number) => string = MEASURED_RUNS): { seconds: number; basis: string } {
  const valid = measured.filter((s) => Number.isFinite(s) && s > 0);
  if (valid.length === 0) {
    return { seconds: assumed.seconds, basis: `assumed ${formatDuration(assumed.seconds)} per run${assumed.why ? ` (${assumed.why})` : ""}: no finished run of this stack measured yet` };
  }
  const mean = valid.reduce((a, b) => a + b, 0) / valid.length;
  return { seconds: mean, basis: `mean ${measuredWhat(valid.length)} (${formatDuration(mean)} each)` };
}

/** Notes on a retention that S3 accepts but that costs more than it looks (early-deletion charges). */
export function retentionNotes(retention: OutputRetention | undefined): string[] {
  if (!retention) return [];
  const notes: string[] = [];
  const phases = outputResidence({ ...retention }, 0);
  for (const [c, days] of Object.entries(daysByClass(phases)) as [StorageClass, number][]) {
    const min = MINIMUM_STORAGE_DAYS[c];
    if (Number.isFinite(days) && days < min) {
      notes.push(`${c} holds each object ${days} days, but S3 bills ${c} for at least ${min} days: the ${min - days} days in between are billed as if the object were still there`);
    }
  }
  return notes;
}

export function formatBytes(bytes: number): string {
  if (bytes === Infinity) return "unbounded";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`;
}

export function formatMoney(money: Money): string {
  if (money.amount === undefined) return costUnknownMessage(money.missing);
  if (money.amount === Infinity) return `unbounded (${money.currency}; outputs never expire)`;
  return `${money.currency} ${money.amount.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h} h ${String(m).padStart(2, "0")} min` : m > 0 ? `${m} min ${String(s % 60).padStart(2, "0")} s` : `${s} s`;
}

export interface StorageSettings {
  runsPerDay: number;
  /** Steps per run (the sum of cascadeSteps). */
  steps: number;
  compression: "none" | "gzip" | "bitround";
  retention?: OutputRetention;
  noncurrentDays: number;
}

function describePhases(phases: readonly Residence[]): string[] {
  const lines = phases.map((p) => `${p.current ? "" : "noncurrent version, "}${p.storageClass}: day ${p.fromDay} to ${p.toDay === Infinity ? "forever" : `day ${p.toDay}`}`);
  if (phases.every((p) => Number.isFinite(p.toDay))) lines.push(`deleted: day ${phases.at(-1)!.toDay}`);
  return lines;
}

/**
 * The stack output `steadyStateStorage`: what the configured cadence keeps in
 * the bucket once every run's output has gone through its whole retention
 * (readable; the numbers come from storageHeld and monthlyStorageCost).
 */
export function steadyStateSummary(
  settings: StorageSettings,
  prices: Prices | undefined,
  instance?: {
    instanceType: string;
    instanceCount: number;
    invocationTimeoutSeconds: number;
    /** serving.mode "async": the endpoint's warm windows and scale-in cooldown (absent: batch). */
    serving?: { warmWindows: readonly WarmWindow[]; scaleInCooldownMinutes: number };
  },
): Record<string, unknown> {
  const bytesPerRun = expectedRunBytes(settings.steps);
  const perRunBasis =
    settings.compression === "none"
      ? `${settings.steps} steps x ${FULL_GRID_STEP_BYTES_UNCOMPRESSED.toLocaleString("en-US")} bytes, compression none`
      : `at most: the uncompressed ${settings.steps} x ${FULL_GRID_STEP_BYTES_UNCOMPRESSED.toLocaleString("en-US")} bytes; the ${settings.compression} ratio on FuXi fields is measured by each run (its manifest)`;
  const opts = { bytesPerRun, runsPerDay: settings.runsPerDay, retention: settings.retention, noncurrentDays: settings.noncurrentDays };
  const held = storageHeld(opts);
  const byClass = Object.fromEntries((Object.entries(held.bytesByClass) as [StorageClass, number][]).map(([c, b]) => [c, formatBytes(b)]));
  const summary: Record<string, unknown> = {
    cadence: `${settings.runsPerDay} run${settings.runsPerDay === 1 ? "" : "s"} a day (fuxi:forecast.runsPerDay)`,
    perRun: `${formatBytes(bytesPerRun)} (${perRunBasis})`,
    lifecycle: describePhases(outputResidence(settings.retention, settings.noncurrentDays)),
    byClass,
  };
  if (held.bounded) {
    summary.total = formatBytes(held.totalBytes);
    summary.monthlyStorageCost = formatMoney(monthlyStorageCost(opts, prices));
  } else {
    const year = storageHeld({ ...opts, afterDays: 365 });
    summary.total = `unbounded: grows by ${formatBytes(held.growthBytesPerDay * 365)} a year (no fuxi:dataBucket.outputRetention.expireAfterDays)`;
    summary.afterOneYear = { total: formatBytes(year.totalBytes), monthlyStorageCost: formatMoney(monthlyStorageCost({ ...opts, afterDays: 365 }, prices)) };
  }
  if (instance?.serving) {
    // async: a run adds at most a cycle started from zero beyond the warm minutes, S + R + T
    // (cycleInstanceMinutes), with the assumed start-up, the whole timeout and T = the scale-in cooldown.
    const tail = instance.serving.scaleInCooldownMinutes;
    const perRunMinutes = cycleInstanceMinutes("async", { startupMinutes: ASSUMED_STARTUP_SECONDS / 60, runMinutes: instance.invocationTimeoutSeconds / 60, instanceCount: 1, scaleInTailMinutes: tail });
    const warm = warmMinutesPerDay(instance.serving.warmWindows);
    const day = dailyEstimate({ ...opts, secondsPerRun: perRunMinutes * 60, instanceType: instance.instanceType, instanceCount: 1, serving: "async", warmMinutesPerDay: warm }, prices);
    const windows = instance.serving.warmWindows.map((w) => `${w.cycleHoursUtc.length} x ${w.durationMinutes} min`).join(" + ");
    summary.perDay = {
      warm: `${formatMoney(day.warm!)} (${windows || "no window"}: fuxi:serving.warmWindows, ${warm} instance-minutes a day on 1 x ${instance.instanceType} at the endpoint price, billed whether or not a run comes)`,
      instance: `${formatMoney(day.instance)} (${settings.runsPerDay} x ${formatDuration(perRunMinutes * 60)} on 1 x ${instance.instanceType}: ${formatDuration(ASSUMED_STARTUP_SECONDS)} start-up + the ${formatDuration(instance.invocationTimeoutSeconds)} invocation timeout + the ${tail} min scale-in cooldown: each run's instance time beyond the warm minutes, at most (docs/serving.md, "Cost per cycle"); npm run runs shows measured processing times)`,
      storage: `${formatMoney(day.storage)} (steady state)`,
    };
  } else if (instance) {
    const assumed = assumedSecondsPerRun(instance.invocationTimeoutSeconds);
    const day = dailyEstimate({ ...opts, secondsPerRun: assumed.seconds, instanceType: instance.instanceType, instanceCount: instance.instanceCount }, prices);
    summary.perDay = {
      instance: `${formatMoney(day.instance)} (${settings.runsPerDay} x ${formatDuration(assumed.seconds)} on ${instance.instanceCount} x ${instance.instanceType}: ${assumed.why}; npm start and the run status show measured times)`,
      storage: `${formatMoney(day.storage)} (steady state)`,
    };
  }
  const notes = retentionNotes(settings.retention);
  if (notes.length > 0) summary.notes = notes;
  return summary;
}

/** The stack output `costModel`: what `runs` and `campaign` price runs with. */
export interface CostModel extends StorageSettings {
  prices: Prices | null;
  instanceType: string;
  instanceCount: number;
  invocationTimeoutSeconds: number;
  retention?: OutputRetention;
}

/** One run as `npm run runs` finds it: SageMaker's job description and the manifest's usage, each if present. */
export interface ObservedRun {
  /** Which mode served the run (default batch). */
  serving?: ServingMode;
  transformStartTime?: Date;
  transformEndTime?: Date;
  /** TransformResources of the job. */
  instanceType?: string;
  instanceCount?: number;
  usage?: { visibleSeconds: number; bytesWritten: number; instanceType: string | null; instanceCount: number | null; invocationStartedAt?: string; invocationEndedAt?: string };
}

export interface BilledUsage {
  serving: ServingMode;
  /** undefined: neither SageMaker nor the manifest says (a job still starting, or gone). */
  seconds: number | undefined;
  /**
   * "sagemaker": TransformEndTime − TransformStartTime (what is billed); "manifest": the runtime's visible part,
   * a lower bound; "invocation" (async): the manifest's invocationStartedAt → invocationEndedAt, the part of
   * the endpoint's billed instance time the run itself used.
   */
  source: "sagemaker" | "manifest" | "invocation" | undefined;
  instanceType: string | undefined;
  instanceCount: number;
  bytesWritten: number;
}

/**
 * batch: SageMaker's start and end where it has both, else the manifest's visible seconds.
 * async: the invocation's processing time. The endpoint's instance is billed from its start to its
 * scale-in, warm windows and idle minutes included, and is shared by the runs it serves, so those
 * minutes belong to no run (docs/serving.md, "Cost per cycle"); the manifest's visibleSeconds would
 * count them (it starts when the container started). One invocation per instance: one instance.
 */
export function billedUsage(run: ObservedRun): BilledUsage {
  const serving = run.serving ?? "batch";
  const instanceType = run.instanceType ?? run.usage?.instanceType ?? undefined;
  const bytesWritten = run.usage?.bytesWritten ?? 0;
  if (serving === "async") {
    const started = Date.parse(run.usage?.invocationStartedAt ?? "");
    const ended = Date.parse(run.usage?.invocationEndedAt ?? "");
    const known = Number.isFinite(started) && Number.isFinite(ended);
    return { serving, seconds: known ? Math.max(0, (ended - started) / 1000) : undefined, source: known ? "invocation" : undefined, instanceType, instanceCount: 1, bytesWritten };
  }
  const instanceCount = run.instanceCount ?? run.usage?.instanceCount ?? 1;
  if (run.transformStartTime && run.transformEndTime) {
    return { serving, seconds: Math.max(0, (run.transformEndTime.getTime() - run.transformStartTime.getTime()) / 1000), source: "sagemaker", instanceType, instanceCount, bytesWritten };
  }
  if (run.usage) return { serving, seconds: run.usage.visibleSeconds, source: "manifest", instanceType, instanceCount, bytesWritten };
  return { serving, seconds: undefined, source: undefined, instanceType, instanceCount, bytesWritten };
}

export interface RunsTotals {
  /** Billed instance-minutes (seconds x instances / 60): GPU minutes on the one-GPU sizes the stacks use. */
  gpuMinutes: number;
  bytesWritten: number;
  cost: Money;
  /** Runs whose time is only the runtime's lower bound, or unknown. */
  lowerBoundRuns: number;
  unknownRuns: number;
  /** Runs served by the async endpoint, priced by their processing time (the endpoint's other minutes are billed apart). */
  asyncRuns: number;
}

/** Per run: GPU minutes (seconds x instances / 60), bytes written and cost at its serving mode's price; and the totals. */
export function priceRuns(runs: readonly ObservedRun[], model: Pick<CostModel, "prices" | "retention" | "noncurrentDays">): { runs: (BilledUsage & { gpuMinutes: number | undefined; cost: RunCost | undefined })[]; totals: RunsTotals } {
  const prices = model.prices ?? undefined;
  const priced = runs.map((r) => {
    const b = billedUsage(r);
    const gpuMinutes = b.seconds === undefined ? undefined : (b.seconds * b.instanceCount) / 60;
    const cost =
      b.seconds === undefined || b.instanceType === undefined
        ? undefined
        : runCost({ instanceType: b.instanceType, instanceCount: b.instanceCount, seconds: b.seconds, serving: b.serving, bytesWritten: b.bytesWritten }, { retention: model.retention, noncurrentDays: model.noncurrentDays }, prices);
    return { ...b, gpuMinutes, cost };
  });
  const costs = priced.filter((p) => p.cost !== undefined).map((p) => p.cost!.total);
  const totals: RunsTotals = {
    gpuMinutes: priced.reduce((a, p) => a + (p.gpuMinutes ?? 0), 0),
    bytesWritten: priced.reduce((a, p) => a + p.bytesWritten, 0),
    cost: sumMoney(costs, prices?.currency),
    lowerBoundRuns: priced.filter((p) => p.source === "manifest").length,
    unknownRuns: priced.filter((p) => p.source === undefined).length,
    asyncRuns: priced.filter((p) => p.serving === "async").length,
  };
  return { runs: priced, totals };
}

/** The lines `campaign` prints before it asks to go on. */
export function formatCampaignEstimate(e: CampaignEstimate, instanceType: string): string[] {
  const endpoint = e.serving === "async";
  return [
    `runs            ${e.runs}`,
    `GPU time        ${e.instanceHours.toFixed(1)} instance-hours on ${instanceType}${endpoint ? " behind the async endpoint" : ""} (${e.basis.seconds})`,
    `instance cost   ${formatMoney(e.instance)}${endpoint ? " at the endpoint price; the warm windows are billed apart, every day (pulumi stack output steadyStateStorage: perDay.warm)" : ""}`,
    `storage         ${formatBytes(e.bytes)} (${e.basis.bytes})`,
    `storage cost    ${formatMoney(e.storageFirstMonth)} for the first month; ${formatMoney(e.storageLifetime)} over the retention`,
    `total           ${formatMoney(e.total)}`,
  ];
}

/** One cycle's billed instance-minutes for a serving mode (docs/serving.md, "Cost per cycle"); times in minutes. */
export interface CycleTimes {
  /** The forecast itself: from the first step to the manifest. */
  runMinutes: number;
  /** Before the first step on a fresh instance: provisioning, image pull, model download and load. */
  startupMinutes: number;
  instanceCount: number;
  /** async: length of the cycle's warm window (0: none, the endpoint starts from zero). */
  warmMinutes?: number;
  /** async: minutes after the window's start when the run arrives (must be within the window). */
  arrivalMinute?: number;
  /** async: how long an idle instance stays before scale-in (scale-in cooldown plus the alarm's evaluation). */
  scaleInTailMinutes?: number;
}

/**
 * batch: every run pays its own start-up: n × (S + R).
 * async, arriving inside a warm window of W minutes at minute a: the window, the part of the run past
 * its end, and the scale-in tail T: W + max(0, a + R − W) + T (the start-up falls before the window).
 * async without a window: S + R + T (started from zero by the backlog).
 */
export function cycleInstanceMinutes(mode: "batch" | "async", t: CycleTimes): number {
  if (mode === "batch") return t.instanceCount * (t.startupMinutes + t.runMinutes);
  const tail = t.scaleInTailMinutes ?? 0;
  const w = t.warmMinutes ?? 0;
  if (w <= 0) return t.startupMinutes + t.runMinutes + tail;
  const a = t.arrivalMinute ?? 0;
  if (a < 0 || a > w) throw new Error(`arrivalMinute ${a} is outside the warm window of ${w} min`);
  return w + Math.max(0, a + t.runMinutes - w) + tail;
}
