import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

/** `fuxi:serving.warmWindows[i]`: one instance kept warm from `<hour>:00 + startOffsetMinutes` for durationMinutes, each cycle hour (UTC). */
export interface WarmWindow {
  cycleHoursUtc: number[];
  startOffsetMinutes: number;
  durationMinutes: number;
}

const DAY = 24 * 60;

/**
 * Application Auto Scaling schedules for a window: `cron(minutes hours day-of-month month day-of-week year)`
 * (docs: application-autoscaling/latest/userguide/scheduled-scaling-using-cron-expressions). Every cycle
 * hour shifts by the same offset, so one start and one end expression cover the whole window.
 */
export function warmWindowSchedules(w: WarmWindow): { start: string; end: string } {
  const at = (minutes: number) => {
    const hours = [...new Set(w.cycleHoursUtc.map((h) => (h + Math.floor(minutes / 60)) % 24))].sort((a, b) => a - b);
    return `cron(${minutes % 60} ${hours.join(",")} * * ? *)`;
  };
  return { start: at(w.startOffsetMinutes), end: at(w.startOffsetMinutes + w.durationMinutes) };
}

const clock = (minuteOfDay: number) => `${String(Math.floor(minuteOfDay / 60)).padStart(2, "0")}:${String(minuteOfDay % 60).padStart(2, "0")}`;

/** Each pair of warm periods (across and within windows) that overlap on the 24-hour clock, reported on the later window. */
export function warmWindowOverlaps(windows: WarmWindow[]): { first: number; second: number; at: string }[] {
  const periods = windows.flatMap((w, index) => w.cycleHoursUtc.map((h) => ({ index, start: (h * 60 + w.startOffsetMinutes) % DAY, length: w.durationMinutes })));
  const found: { first: number; second: number; at: string }[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < periods.length; i++) {
    for (let j = i + 1; j < periods.length; j++) {
      const a = periods[i]!, b = periods[j]!;
      // On a circle: b starts inside a, or a starts inside b.
      const bInA = (b.start - a.start + DAY) % DAY < a.length;
      const aInB = (a.start - b.start + DAY) % DAY < b.length;
      if (!bInA && !aInB) continue;
      const [first, second] = a.index <= b.index ? [a.index, b.index] : [b.index, a.index];
      const id = `${first}/${second}`;
      if (seen.has(id)) continue;
      seen.add(id);
      found.push({ first, second, at: clock(bInA ? b.start : a.start) });
    }
  }
  return found;
}

export interface WarmWindowsArgs {
  /** `endpoint/<name>/variant/<variant>` of the scalable target. */
  resourceId: pulumi.Input<string>;
  scalableDimension: pulumi.Input<string>;
  windows: WarmWindow[];
  /** Capacity the scalable target returns to at the end of a window (0: scale to zero when idle). */
  idleMinCapacity: number;
  maxCapacity: number;
}

/**
 * Scheduled actions that raise the endpoint's minimum capacity to 1 at each window's start and lower it
 * again at its end; target tracking then removes the instance once it is idle.
 */
export class WarmWindows extends pulumi.ComponentResource {
  readonly scheduleCount: number;

  constructor(name: string, args: WarmWindowsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fuxi:serving:WarmWindows", name, {}, opts);
    const base = { serviceNamespace: "sagemaker", resourceId: args.resourceId, scalableDimension: args.scalableDimension, timezone: "Etc/UTC" };
    args.windows.forEach((w, i) => {
      const { start, end } = warmWindowSchedules(w);
      new aws.appautoscaling.ScheduledAction(`${name}-${i}-start`, {
        ...base,
        name: `${name}-${i}-start`,
        schedule: start,
        scalableTargetAction: { minCapacity: 1, maxCapacity: args.maxCapacity },
      }, { parent: this });
      new aws.appautoscaling.ScheduledAction(`${name}-${i}-end`, {
        ...base,
        name: `${name}-${i}-end`,
        schedule: end,
        scalableTargetAction: { minCapacity: args.idleMinCapacity, maxCapacity: args.maxCapacity },
      }, { parent: this });
    });
    this.scheduleCount = args.windows.length * 2;
    this.registerOutputs({ scheduleCount: this.scheduleCount });
  }
}
