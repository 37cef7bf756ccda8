// Which stage runs which global step, and the names of the step files.

export const STAGE_NAMES = ["short", "medium", "long"] as const;
export type StageName = (typeof STAGE_NAMES)[number];

export const HOURS_PER_STEP = 6;

/** Stage index (0 short, 1 medium, 2 long) for each global step, from the per-stage step counts. */
export function stageSchedule(cascadeSteps: readonly number[]): number[] {
  const schedule: number[] = [];
  cascadeSteps.forEach((count, stage) => {
    for (let i = 0; i < count; i++) schedule.push(stage);
  });
  return schedule;
}

/** Lead time in hours of the forecast produced by global step `step` (out[:, -1]). */
export function leadHours(step: number): number {
  return (step + 1) * HOURS_PER_STEP;
}

/** `006.nc` … `360.nc` (three digits at least). */
export function stepFileName(step: number): string {
  return `${String(leadHours(step)).padStart(3, "0")}.nc`;
}
