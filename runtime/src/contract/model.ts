// FuXi's fixed facts the code relies on (docs/fuxi-model.md): stages, model files, channels, steps.

/** The cascade's stages in order: short for the first steps, then medium, then long. */
export const STAGE_NAMES = ["short", "medium", "long"] as const;
export type StageName = (typeof STAGE_NAMES)[number];

/** The six files of one model folder: each stage's graph and, next to it, its external weights. */
export const MODEL_FILES: readonly string[] = Object.freeze(STAGE_NAMES.flatMap((stage) => [`${stage}.onnx`, stage]));

/** Pressure levels (hPa) of the upper-air channels, top of the atmosphere first. */
export const PRESSURE_LEVELS: readonly number[] = Object.freeze([50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000]);
export const UPPER_AIR_VARIABLES: readonly string[] = Object.freeze(["z", "t", "u", "v", "r"]);
export const SURFACE_VARIABLES: readonly string[] = Object.freeze(["t2m", "u10", "v10", "msl", "tp"]);

/** The 70 channels in model order: Z, T, U, V, R at 13 levels each (channel = var*13 + level), then the surface fields. */
export const CHANNEL_NAMES: readonly string[] = Object.freeze([
  ...UPPER_AIR_VARIABLES.flatMap((variable) => PRESSURE_LEVELS.map((level) => `${variable}${level}`)),
  ...SURFACE_VARIABLES,
]);

export const HOURS_PER_STEP = 6;
/** Every stage but the last present one runs at most this many steps. */
export const MAX_STEPS_BEFORE_LAST_STAGE = 20;
export const MAX_TOTAL_STEPS = 100;

/**
 * The cascade-step rule (docs/contract.md, `cascadeSteps`): 1 to 3 non-negative whole numbers,
 * each at most 20 except the last, summing to 1 … 100. Null when valid, else what is wrong; `at`
 * is the index of the offending entry when one entry is at fault.
 */
export function cascadeStepsFault(steps: readonly unknown[]): { fault: string; at?: number } | null {
  if (steps.length < 1 || steps.length > STAGE_NAMES.length) return { fault: `has ${steps.length} stages; expected 1 to ${STAGE_NAMES.length} (short, medium, long)` };
  for (const [i, n] of steps.entries()) {
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0) return { fault: `must be a non-negative whole number, got ${JSON.stringify(n)}`, at: i };
    if (i < steps.length - 1 && n > MAX_STEPS_BEFORE_LAST_STAGE) {
      return { fault: `runs ${n} steps; only the last stage may run more than ${MAX_STEPS_BEFORE_LAST_STAGE}`, at: i };
    }
  }
  const total = (steps as number[]).reduce((a, b) => a + b, 0);
  if (total < 1 || total > MAX_TOTAL_STEPS) return { fault: `adds up to ${total} steps; expected 1 to ${MAX_TOTAL_STEPS}` };
  return null;
}

/** Stage index (0 short, 1 medium, 2 long) for each global step, from the per-stage step counts. */
export function stageSchedule(cascadeSteps: readonly number[]): number[] {
  return cascadeSteps.flatMap((count, stage) => Array.from({ length: count }, () => stage));
}

/** Lead time in hours of the forecast produced by global step `step` (out[:, -1]). */
export function leadHours(step: number): number {
  return (step + 1) * HOURS_PER_STEP;
}

/** The step file of lead `lead` hours: `006.nc` … `360.nc` (three digits at least). */
export function stepFileNameForLead(lead: number): string {
  return `${String(lead).padStart(3, "0")}.nc`;
}

/** The step file of global step `step`. */
export function stepFileName(step: number): string {
  return stepFileNameForLead(leadHours(step));
}
