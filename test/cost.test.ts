import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CHANNEL_NAMES, writeForecastStepFile } from "../runtime/src/netcdf";
import {
  cycleInstanceMinutes,
  BYTES_PER_GB,
  billedDaysByClass,
  campaignEstimate,
  DAYS_PER_MONTH,
  expectedRunBytes,
  expectedSecondsPerRun,
  assumedSecondsPerRun,
  billedUsage,
  dailyEstimate,
  formatBytes,
  formatCampaignEstimate,
  priceRuns,
  formatDuration,
  formatMoney,
  FULL_GRID_STEP_BYTES_UNCOMPRESSED,
  instanceCost,
  lifetimeStorageCost,
  monthlyStorageCost,
  outputResidence,
  retentionNotes,
  runCost,
  steadyStateSummary,
  storageHeld,
  warmMinutesPerDay,
  type OutputRetention,
  type Prices,
} from "../cost";

const PROD: OutputRetention = { infrequentAccessAfterDays: 30, archiveAfterDays: 90, archiveClass: "GLACIER_IR", expireAfterDays: 365 };
const PRICES: Prices = {
  currency: "CNY",
  instanceHour: { "ml.g5.2xlarge": 12, "ml.g4dn.xlarge": 6 },
  endpointInstanceHour: { "ml.g5.2xlarge": 15 },
  storageGbMonth: { STANDARD: 0.2, STANDARD_IA: 0.1, GLACIER_IR: 0.04, GLACIER: 0.03, DEEP_ARCHIVE: 0.01 },
};
const close = (actual: number | undefined, expected: number, what = "") => {
  assert.ok(actual !== undefined, `${what}: undefined`);
  assert.ok(Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${what}: ${actual} != ${expected}`);
};

describe("cost arithmetic (cost.ts)", () => {
  describe("where a run's output lives", () => {
    it("keeps it in STANDARD forever without a retention", () => {
      assert.deepEqual(outputResidence(undefined, 30), [{ storageClass: "STANDARD", fromDay: 0, toDay: Infinity, current: true }]);
    });

    it("follows the transitions, then keeps the noncurrent version noncurrentDays more in the last class", () => {
      assert.deepEqual(outputResidence(PROD, 30), [
        { storageClass: "STANDARD", fromDay: 0, toDay: 30, current: true },
        { storageClass: "STANDARD_IA", fromDay: 30, toDay: 90, current: true },
        { storageClass: "GLACIER_IR", fromDay: 90, toDay: 365, current: true },
        { storageClass: "GLACIER_IR", fromDay: 365, toDay: 395, current: false },
      ]);
    });

    it("drops a class the object never reaches, and one of zero days", () => {
      assert.deepEqual(outputResidence({ archiveAfterDays: 0, archiveClass: "GLACIER", expireAfterDays: 100 }, 30), [
        { storageClass: "GLACIER", fromDay: 0, toDay: 100, current: true },
        { storageClass: "GLACIER", fromDay: 100, toDay: 130, current: false },
      ]);
      assert.deepEqual(outputResidence({ expireAfterDays: 14 }, 0), [{ storageClass: "STANDARD", fromDay: 0, toDay: 14, current: true }]);
    });

    it("archives to GLACIER_IR when no archive class is named", () => {
      assert.equal(outputResidence({ archiveAfterDays: 60 }, 30).at(-1)!.storageClass, "GLACIER_IR");
    });

    it("bills each class at least its minimum duration (early deletion)", () => {
      // GLACIER for 60 days (30 current + 30 noncurrent) is billed 90; STANDARD has no minimum.
      assert.deepEqual(billedDaysByClass(outputResidence({ archiveAfterDays: 0, archiveClass: "GLACIER", expireAfterDays: 30 }, 30)), { GLACIER: 90 });
      assert.deepEqual(billedDaysByClass(outputResidence({ archiveAfterDays: 10, archiveClass: "DEEP_ARCHIVE", expireAfterDays: 100 }, 30)), { STANDARD: 10, DEEP_ARCHIVE: 180 });
      assert.deepEqual(billedDaysByClass(outputResidence(PROD, 30)), { STANDARD: 30, STANDARD_IA: 60, GLACIER_IR: 305 });
    });
  });

  describe("storage held for a cadence", () => {
    it("holds runsPerDay x bytesPerRun x days in each class in the steady state", () => {
      const held = storageHeld({ bytesPerRun: 1e9, runsPerDay: 4, retention: PROD, noncurrentDays: 30 });
      assert.deepEqual(held.bytesByClass, { STANDARD: 4e9 * 30, STANDARD_IA: 4e9 * 60, GLACIER_IR: 4e9 * (275 + 30) });
      assert.equal(held.totalBytes, 4e9 * 395);
      assert.equal(held.bounded, true);
      assert.equal(held.growthBytesPerDay, 0);
    });

    it("counts only the days elapsed before the steady state", () => {
      const held = storageHeld({ bytesPerRun: 1e9, runsPerDay: 4, retention: PROD, noncurrentDays: 30, afterDays: 45 });
      assert.deepEqual(held.bytesByClass, { STANDARD: 4e9 * 30, STANDARD_IA: 4e9 * 15 });
    });

    it("grows without bound when nothing expires", () => {
      const held = storageHeld({ bytesPerRun: 1e9, runsPerDay: 4, noncurrentDays: 30 });
      assert.equal(held.bounded, false);
      assert.equal(held.bytesByClass.STANDARD, Infinity);
      assert.equal(held.growthBytesPerDay, 4e9);
      assert.equal(storageHeld({ bytesPerRun: 1e9, runsPerDay: 4, noncurrentDays: 30, afterDays: 365 }).totalBytes, 4e9 * 365);
      assert.deepEqual(storageHeld({ bytesPerRun: 1e9, runsPerDay: 4, retention: { infrequentAccessAfterDays: 30 }, noncurrentDays: 30 }).bytesByClass, { STANDARD: 4e9 * 30, STANDARD_IA: Infinity });
    });

    it("reproduces the issue's figures: a 15-day run is 17.4 GB, four a day about 70 GB a day and 25 TB a year", () => {
      const run = expectedRunBytes(60);
      assert.equal(run, 60 * FULL_GRID_STEP_BYTES_UNCOMPRESSED);
      assert.equal((run / 1e9).toFixed(1), "17.4");
      assert.equal(Math.round((4 * run) / 1e9), 70);
      assert.equal(Math.round(storageHeld({ bytesPerRun: run, runsPerDay: 4, noncurrentDays: 30, afterDays: 365 }).totalBytes / 1e12), 25);
    });
  });

  describe("prices", () => {
    it("prices instance time per second: hours x instances x price", () => {
      const m = instanceCost({ seconds: 1800, instanceType: "ml.g5.2xlarge", instanceCount: 2 }, PRICES);
      assert.deepEqual(m, { amount: 12, currency: "CNY", missing: [] });
    });

    it("prices async serving at the endpoint price, batch at the Batch Transform price", () => {
      assert.deepEqual(instanceCost({ seconds: 1800, instanceType: "ml.g5.2xlarge", instanceCount: 1, serving: "async" }, PRICES), { amount: 7.5, currency: "CNY", missing: [] });
      assert.deepEqual(instanceCost({ seconds: 1800, instanceType: "ml.g5.2xlarge", instanceCount: 1, serving: "batch" }, PRICES), { amount: 6, currency: "CNY", missing: [] });
      // A costModel output from before endpointInstanceHour existed: the async price is named as missing.
      const old = instanceCost({ seconds: 1800, instanceType: "ml.g4dn.xlarge", instanceCount: 1, serving: "async" }, { currency: "CNY", instanceHour: { "ml.g4dn.xlarge": 6 }, storageGbMonth: {} });
      assert.deepEqual([old.amount, old.missing], [undefined, ['fuxi:cost.endpointInstanceHour["ml.g4dn.xlarge"]']]);
    });

    it("says which price is missing instead of guessing one", () => {
      const m = instanceCost({ seconds: 1800, instanceType: "ml.p3.2xlarge", instanceCount: 1 }, PRICES);
      assert.equal(m.amount, undefined);
      assert.deepEqual(m.missing, ['fuxi:cost.instanceHour["ml.p3.2xlarge"]']);
      assert.equal(formatMoney(m), 'cost unknown: set fuxi:cost (fuxi:cost.instanceHour["ml.p3.2xlarge"]; docs/cost.md)');
      const none = lifetimeStorageCost(1e9, PROD, 30, undefined);
      assert.equal(none.amount, undefined);
      assert.deepEqual(none.missing, ["fuxi:cost.storageGbMonth.STANDARD", "fuxi:cost.storageGbMonth.STANDARD_IA", "fuxi:cost.storageGbMonth.GLACIER_IR"]);
      assert.match(formatMoney(none), /^cost unknown: set fuxi:cost/);
    });

    it("prices a run's storage over its life: GB x billed days / days per month x price, per class", () => {
      const m = lifetimeStorageCost(BYTES_PER_GB, PROD, 30, PRICES);
      close(m.amount, (30 * 0.2 + 60 * 0.1 + 305 * 0.04) / DAYS_PER_MONTH, "prod lifetime");
      const early = lifetimeStorageCost(2 * BYTES_PER_GB, { archiveAfterDays: 0, archiveClass: "GLACIER", expireAfterDays: 30 }, 30, PRICES);
      close(early.amount, (2 * 90 * 0.03) / DAYS_PER_MONTH, "minimum duration billed");
      assert.equal(lifetimeStorageCost(1e9, undefined, 30, PRICES).amount, Infinity);
    });

    it("steady-state monthly storage cost equals bytes held x prices when no minimum is hit (Little's law)", () => {
      const opts = { bytesPerRun: expectedRunBytes(60), runsPerDay: 4, retention: PROD, noncurrentDays: 30 };
      const held = storageHeld(opts);
      const direct = (Object.entries(held.bytesByClass) as [keyof Prices["storageGbMonth"], number][]).reduce((a, [c, b]) => a + (b / BYTES_PER_GB) * PRICES.storageGbMonth[c]!, 0);
      close(monthlyStorageCost(opts, PRICES).amount, direct, "steady state");
      // Reached after the last phase ends: the bytes-held form at day 395 gives the same.
      close(monthlyStorageCost({ ...opts, afterDays: 395 }, PRICES).amount, direct, "at day 395");
    });

    it("charges more than the bytes held when objects leave a class before its minimum", () => {
      const opts = { bytesPerRun: BYTES_PER_GB, runsPerDay: 1, retention: { archiveAfterDays: 0, archiveClass: "GLACIER" as const, expireAfterDays: 30 }, noncurrentDays: 30 };
      const held = storageHeld(opts).bytesByClass.GLACIER!;
      close(held, 60 * BYTES_PER_GB);
      close(monthlyStorageCost(opts, PRICES).amount, 90 * 0.03, "billed 90 days per object");
      assert.ok(monthlyStorageCost(opts, PRICES).amount! > (held / BYTES_PER_GB) * 0.03);
    });

    it("has no steady-state cost when outputs never expire, but a cost after a year", () => {
      const opts = { bytesPerRun: BYTES_PER_GB, runsPerDay: 2, noncurrentDays: 30 };
      assert.equal(monthlyStorageCost(opts, PRICES).amount, Infinity);
      assert.match(formatMoney(monthlyStorageCost(opts, PRICES)), /^unbounded/);
      close(monthlyStorageCost({ ...opts, afterDays: 365 }, PRICES).amount, 2 * 365 * 0.2, "after a year");
    });

    it("adds a run's instance time and its lifetime storage", () => {
      const c = runCost({ instanceType: "ml.g4dn.xlarge", instanceCount: 1, seconds: 3600, bytesWritten: BYTES_PER_GB }, { retention: { expireAfterDays: 14 }, noncurrentDays: 30 }, PRICES);
      close(c.instance.amount, 6);
      close(c.storage.amount, (44 * 0.2) / DAYS_PER_MONTH);
      close(c.total.amount, 6 + (44 * 0.2) / DAYS_PER_MONTH);
      const unknown = runCost({ instanceType: "ml.g4dn.xlarge", instanceCount: 1, seconds: 3600, bytesWritten: 1 }, { noncurrentDays: 30 }, undefined);
      assert.equal(unknown.total.amount, undefined);
      assert.deepEqual(unknown.total.missing, ['fuxi:cost.instanceHour["ml.g4dn.xlarge"]', "fuxi:cost.storageGbMonth.STANDARD"]);
    });
  });

  describe("a day of the cadence", () => {
    it("is runsPerDay instance runs plus a day's share of the steady-state storage", () => {
      const opts = { runsPerDay: 4, secondsPerRun: 1800, instanceType: "ml.g5.2xlarge", instanceCount: 1, bytesPerRun: BYTES_PER_GB, retention: { expireAfterDays: 14 }, noncurrentDays: 30 };
      const d = dailyEstimate(opts, PRICES);
      close(d.instance.amount, 4 * 0.5 * 12);
      close(d.storage.amount, (4 * 44 * 0.2) / DAYS_PER_MONTH);
      close(d.total.amount, 24 + (4 * 44 * 0.2) / DAYS_PER_MONTH);
      assert.equal(dailyEstimate({ ...opts, retention: undefined }, PRICES).storage.amount, Infinity);
      assert.deepEqual(dailyEstimate(opts, undefined).total.missing, ['fuxi:cost.instanceHour["ml.g5.2xlarge"]', "fuxi:cost.storageGbMonth.STANDARD"]);
    });

    it("async: the runs and the warm windows' minutes, both at the endpoint price", () => {
      const windows = [{ cycleHoursUtc: [0, 6, 12, 18], durationMinutes: 60 }, { cycleHoursUtc: [3], durationMinutes: 30 }];
      assert.equal(warmMinutesPerDay(windows), 4 * 60 + 30);
      assert.equal(warmMinutesPerDay([]), 0);
      const opts = { runsPerDay: 4, secondsPerRun: 1800, instanceType: "ml.g5.2xlarge", instanceCount: 1, serving: "async" as const, warmMinutesPerDay: 270, bytesPerRun: 0, noncurrentDays: 30, retention: { expireAfterDays: 14 } };
      const d = dailyEstimate(opts, PRICES);
      close(d.instance.amount, 4 * 0.5 * 15);
      close(d.warm!.amount, 4.5 * 15);
      close(d.total.amount, 30 + 67.5);
      assert.equal(dailyEstimate({ ...opts, serving: "batch", warmMinutesPerDay: undefined }, PRICES).warm, undefined);
    });
  });

  describe("campaign estimate", () => {
    it("multiplies runs by the per-run seconds and bytes and prices both", () => {
      const e = campaignEstimate(
        { runs: 100, secondsPerRun: 1200, secondsBasis: "assumed", bytesPerRun: BYTES_PER_GB, bytesBasis: "uncompressed", instanceType: "ml.g5.2xlarge", instanceCount: 1, retention: { expireAfterDays: 14 }, noncurrentDays: 30 },
        PRICES,
      );
      close(e.instanceHours, 100 / 3);
      close(e.instance.amount, 400);
      assert.equal(e.bytes, 100 * BYTES_PER_GB);
      close(e.storageFirstMonth.amount, 100 * 0.2);
      close(e.storageLifetime.amount, (100 * 44 * 0.2) / DAYS_PER_MONTH);
      close(e.total.amount, 400 + (100 * 44 * 0.2) / DAYS_PER_MONTH);
      assert.deepEqual(e.basis, { seconds: "assumed", bytes: "uncompressed" });
    });

    it("uses the mean of measured runs, else states the assumption", () => {
      assert.deepEqual(expectedSecondsPerRun([600, 900, NaN, 0], { seconds: 1800 }), { seconds: 750, basis: "mean of 2 measured runs (12 min 30 s each)" });
      const assumed = expectedSecondsPerRun([], assumedSecondsPerRun(3600));
      assert.equal(assumed.seconds, 600 + 3600);
      assert.equal(assumed.basis, "assumed 1 h 10 min per run (10 min 00 s start-up + the 1 h 00 min invocation timeout, an upper bound): no finished run of this stack measured yet");
    });
  });

  describe("notes and formatting", () => {
    it("notes retention that pays for days it does not keep", () => {
      assert.deepEqual(retentionNotes(PROD), []);
      const notes = retentionNotes({ archiveAfterDays: 0, archiveClass: "DEEP_ARCHIVE", expireAfterDays: 60 });
      assert.equal(notes.length, 1);
      assert.match(notes[0], /DEEP_ARCHIVE holds each object 60 days, but S3 bills DEEP_ARCHIVE for at least 180 days/);
    });

    it("formats sizes in binary units (AWS's GB is 2^30 bytes) and durations", () => {
      assert.equal(formatBytes(512), "512 B");
      assert.equal(formatBytes(1.5 * 2 ** 30), "1.50 GiB");
      assert.equal(formatBytes(25.06 * 2 ** 40), "25.1 TiB");
      assert.equal(formatBytes(Infinity), "unbounded");
      assert.equal(formatDuration(3 * 3600 + 5 * 60), "3 h 05 min");
      assert.equal(formatDuration(42), "42 s");
      assert.equal(formatMoney({ amount: 1234.5, currency: "USD", missing: [] }), "USD 1,234.50");
    });

    it("summarises the steady state for the stack output, with the cost or what is missing", () => {
      const s = steadyStateSummary({ runsPerDay: 4, steps: 60, compression: "none", retention: PROD, noncurrentDays: 30 }, undefined);
      assert.equal(s.total, "25.1 TiB");
      assert.deepEqual(s.byClass, { STANDARD: "1.90 TiB", STANDARD_IA: "3.81 TiB", GLACIER_IR: "19.4 TiB" });
      assert.match(String(s.monthlyStorageCost), /^cost unknown: set fuxi:cost \(fuxi:cost\.storageGbMonth\.STANDARD, /);
      const priced = steadyStateSummary({ runsPerDay: 4, steps: 60, compression: "gzip", retention: PROD, noncurrentDays: 30 }, PRICES);
      assert.match(String(priced.monthlyStorageCost), /^CNY [\d,]+\.\d\d$/);
      assert.match(String(priced.perRun), /^16\.2 GiB \(at most/);
      const withInstance = steadyStateSummary({ runsPerDay: 4, steps: 60, compression: "none", retention: PROD, noncurrentDays: 30 }, PRICES, { instanceType: "ml.g5.2xlarge", instanceCount: 1, invocationTimeoutSeconds: 3600 });
      const perDay = withInstance.perDay as { instance: string; storage: string };
      // 4 runs x (600 + 3600) s at 12 per hour.
      assert.match(perDay.instance, /^CNY 56\.00 \(4 x 1 h 10 min on 1 x ml\.g5\.2xlarge: 10 min 00 s start-up \+ the 1 h 00 min invocation timeout, an upper bound/);
      assert.match(perDay.storage, /^CNY [\d,.]+ \(steady state\)$/);
      // async: 4 x 60 warm minutes = 4 h x 15 = 60.00; each run at most 10 + 60 + 15 min beyond them: 4 x 85 min x 15 / 60 = 85.00.
      const asyncDay = steadyStateSummary({ runsPerDay: 4, steps: 60, compression: "none", retention: PROD, noncurrentDays: 30 }, PRICES, {
        instanceType: "ml.g5.2xlarge", instanceCount: 1, invocationTimeoutSeconds: 3600, serving: { warmWindows: [{ cycleHoursUtc: [0, 6, 12, 18], startOffsetMinutes: 200, durationMinutes: 60 }], scaleInCooldownMinutes: 15 },
      }).perDay as { warm: string; instance: string };
      assert.equal(asyncDay.warm, "CNY 60.00 (4 x 60 min: fuxi:serving.warmWindows, 240 instance-minutes a day on 1 x ml.g5.2xlarge at the endpoint price, billed whether or not a run comes)");
      assert.match(asyncDay.instance, /^CNY 85\.00 \(4 x 1 h 25 min on 1 x ml\.g5\.2xlarge: 10 min 00 s start-up \+ the 1 h 00 min invocation timeout \+ the 15 min scale-in cooldown: each run's instance time beyond the warm minutes, at most \(docs\/serving\.md/);
      const forever = steadyStateSummary({ runsPerDay: 1, steps: 20, compression: "none", noncurrentDays: 30 }, PRICES);
      assert.match(String(forever.total), /^unbounded: grows by 1\.93 TiB a year/);
      assert.deepEqual(Object.keys(forever.afterOneYear as object), ["total", "monthlyStorageCost"]);
    });
  });

  describe("pricing observed runs (npm run runs)", () => {
    const start = new Date("2026-12-01T06:00:00Z");
    const minutes = (m: number) => new Date(start.getTime() + m * 60_000);
    const usage = { visibleSeconds: 1200, bytesWritten: 2 * BYTES_PER_GB, instanceType: "ml.g5.2xlarge", instanceCount: 1 };

    it("bills SageMaker's TransformStartTime to TransformEndTime, else the manifest's visible part as a lower bound", () => {
      assert.deepEqual(billedUsage({ transformStartTime: start, transformEndTime: minutes(30), instanceType: "ml.g5.2xlarge", instanceCount: 2, usage }), {
        serving: "batch", seconds: 1800, source: "sagemaker", instanceType: "ml.g5.2xlarge", instanceCount: 2, bytesWritten: 2 * BYTES_PER_GB,
      });
      assert.deepEqual(billedUsage({ usage }), { serving: "batch", seconds: 1200, source: "manifest", instanceType: "ml.g5.2xlarge", instanceCount: 1, bytesWritten: 2 * BYTES_PER_GB });
      assert.deepEqual(billedUsage({ transformStartTime: start, instanceType: "ml.g5.2xlarge" }), { serving: "batch", seconds: undefined, source: undefined, instanceType: "ml.g5.2xlarge", instanceCount: 1, bytesWritten: 0 });
    });

    it("async: the invocation's processing time, not the warm container's visible seconds", () => {
      // The instance had been warm 2 h (visibleSeconds) when this 40-minute invocation came.
      const warm = { ...usage, visibleSeconds: 7200, instanceCount: 2, invocationStartedAt: minutes(0).toISOString(), invocationEndedAt: minutes(40).toISOString() };
      assert.deepEqual(billedUsage({ serving: "async", usage: warm }), { serving: "async", seconds: 2400, source: "invocation", instanceType: "ml.g5.2xlarge", instanceCount: 1, bytesWritten: 2 * BYTES_PER_GB });
      assert.equal(billedUsage({ serving: "async" }).source, undefined, "no manifest yet: no time");
      const { runs, totals } = priceRuns([{ serving: "async", usage: warm }], { prices: { ...PRICES, storageGbMonth: { STANDARD: 0 } }, noncurrentDays: 0 });
      // 40 min x 15 per endpoint instance-hour = 10.00 (the transform price, 12, would be 8.00).
      close(runs[0]!.cost!.total.amount, 10);
      assert.deepEqual([totals.asyncRuns, totals.lowerBoundRuns, totals.gpuMinutes], [1, 0, 40]);
    });

    it("adds GPU minutes, bytes and cost over runs, and counts the runs it could not time exactly", () => {
      const { runs, totals } = priceRuns(
        [
          { transformStartTime: start, transformEndTime: minutes(30), instanceType: "ml.g5.2xlarge", instanceCount: 1, usage },
          { usage },
          { instanceType: "ml.g5.2xlarge" },
        ],
        { prices: PRICES, retention: { expireAfterDays: 14 }, noncurrentDays: 30 },
      );
      assert.deepEqual(runs.map((r) => r.gpuMinutes), [30, 20, undefined]);
      close(totals.gpuMinutes, 50);
      assert.equal(totals.bytesWritten, 4 * BYTES_PER_GB);
      const storage = (2 * 44 * 0.2) / DAYS_PER_MONTH;
      close(runs[0]!.cost!.total.amount, 6 + storage);
      close(totals.cost.amount, 6 + 4 + 2 * storage);
      assert.deepEqual([totals.lowerBoundRuns, totals.unknownRuns], [1, 1]);
      const unpriced = priceRuns([{ usage }], { prices: null, noncurrentDays: 30 });
      assert.match(formatMoney(unpriced.totals.cost), /^cost unknown: set fuxi:cost \(fuxi:cost\.instanceHour\["ml\.g5\.2xlarge"\], fuxi:cost\.storageGbMonth\.STANDARD;/);
    });

    it("prints a campaign estimate with its bases", () => {
      const e = campaignEstimate({ runs: 360, secondsPerRun: 1500, secondsBasis: "mean of 3 measured runs (25 min 00 s each)", bytesPerRun: expectedRunBytes(60), bytesBasis: "uncompressed", instanceType: "ml.g5.2xlarge", instanceCount: 1, retention: PROD, noncurrentDays: 30 }, undefined);
      const lines = formatCampaignEstimate(e, "ml.g5.2xlarge");
      assert.equal(lines[0], "runs            360");
      assert.equal(lines[1], "GPU time        150.0 instance-hours on ml.g5.2xlarge (mean of 3 measured runs (25 min 00 s each))");
      assert.equal(lines[3], "storage         5.71 TiB (uncompressed)");
      assert.match(lines[5]!, /^total {11}cost unknown: set fuxi:cost/);
    });
  });

  it("FULL_GRID_STEP_BYTES_UNCOMPRESSED is what the runtime's encoder writes for one full-grid step", async function () {
    this.timeout(120_000);
    // The real encoder on the real grid (290 MB): the constant must change with the encoder.
    const dir = mkdtempSync(join(tmpdir(), "fuxi-cost-17-"));
    try {
      const lat = Float64Array.from({ length: 721 }, (_, i) => 90 - i * 0.25);
      const lon = Float64Array.from({ length: 1440 }, (_, i) => i * 0.25);
      const data = new Float32Array(new SharedArrayBuffer(70 * 721 * 1440 * 4)).fill(273.15);
      const path = join(dir, "360.nc");
      await writeForecastStepFile({ initTime: new Date("2023-10-12T06:00:00Z"), leadHours: 360, levels: [...CHANNEL_NAMES], lat, lon, data, compression: "none" }, path);
      assert.equal(statSync(path).size, FULL_GRID_STEP_BYTES_UNCOMPRESSED);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe("instance-minutes per cycle by serving mode (docs/serving.md)", () => {
    it("batch pays its start-up each run; async pays the window, the overrun and the scale-in tail", () => {
      const t = { runMinutes: 20, startupMinutes: 10, instanceCount: 1 };
      assert.equal(cycleInstanceMinutes("batch", t), 30);
      assert.equal(cycleInstanceMinutes("batch", { ...t, instanceCount: 2 }), 60);
      assert.equal(cycleInstanceMinutes("async", { ...t, warmMinutes: 60, arrivalMinute: 20, scaleInTailMinutes: 30 }), 90, "inside the window: W + T");
      assert.equal(cycleInstanceMinutes("async", { ...t, warmMinutes: 60, arrivalMinute: 50, scaleInTailMinutes: 30 }), 100, "ends 10 min past the window");
      assert.equal(cycleInstanceMinutes("async", { ...t, scaleInTailMinutes: 30 }), 60, "no window: from zero, S + R + T");
      assert.throws(() => cycleInstanceMinutes("async", { ...t, warmMinutes: 60, arrivalMinute: 61 }), /outside the warm window/);
    });
  });
});

