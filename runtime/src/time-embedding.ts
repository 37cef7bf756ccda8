// FuXi's time embedding, reproduced exactly from the original inference code
// (including the missing 2π): see docs/fuxi-model.md, "Time embedding".

const SIX_HOURS_MS = 6 * 3600 * 1000;

function dayOfYear(t: Date): number {
  return Math.floor((t.getTime() - Date.UTC(t.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;
}

/** temb for global step `step` (0-based, never reset between stages), init time t0 = second input frame. */
export function timeEmbedding(initTime: Date, step: number): Float32Array {
  if (!Number.isInteger(step) || step < 0) throw new Error(`step must be a non-negative integer, got ${step}`);
  const values = new Float32Array(12);
  for (let k = 0; k < 3; k++) {
    const t = new Date(initTime.getTime() + (step - 1 + k) * SIX_HOURS_MS);
    const d = dayOfYear(t) / 366;
    const h = t.getUTCHours() / 24;
    values.set([Math.sin(d), Math.sin(h), Math.cos(d), Math.cos(h)], k * 4);
  }
  return values;
}
