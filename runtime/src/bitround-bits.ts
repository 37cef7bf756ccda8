// Mantissa bits kept per FuXi variable with `compression: "bitround"` (FUXI_BITROUND_BITS).
// The defaults are conservative: each keeps the rounding error (≤ 2^-(bits+1) of the value) far
// below what a 6-hour forecast can resolve, well above the 99 % real-information content that
// Klöwer et al. (2021) found for these variables (mostly 2-8 bits); docs/output.md has the table.
import { CHANNEL_NAMES, PRESSURE_LEVELS } from "./contract";

export const FUXI_VARIABLES = ["z", "t", "u", "v", "r", "t2m", "u10", "v10", "msl", "tp"] as const;
export type FuxiVariable = (typeof FUXI_VARIABLES)[number];

export const DEFAULT_BITROUND_BITS: Record<FuxiVariable, number> = {
  z: 14, // 50 000 m²/s² at 500 hPa → ≤ 1.5 m²/s² (0.15 gpm)
  t: 12, // 300 K → ≤ 0.037 K
  u: 10, // 50 m/s → ≤ 0.025 m/s
  v: 10,
  r: 8, // 100 % → ≤ 0.2 %
  t2m: 12,
  u10: 10,
  v10: 10,
  msl: 14, // 101 325 Pa → ≤ 3.1 Pa
  tp: 8, // 10 mm → ≤ 0.02 mm
};

/** Parses `z=14,t=12,…` (any subset; the rest keep their defaults); throws naming the fault. */
export function parseBitroundBits(text: string | undefined): Record<FuxiVariable, number> {
  const bits = { ...DEFAULT_BITROUND_BITS };
  for (const entry of (text ?? "").split(",").map((e) => e.trim()).filter(Boolean)) {
    const match = /^([a-z0-9]+)\s*=\s*(\d+)$/i.exec(entry);
    if (!match) throw new Error(`entry ${JSON.stringify(entry)} is not <variable>=<bits>`);
    const name = match[1].toLowerCase() as FuxiVariable;
    if (!FUXI_VARIABLES.includes(name)) throw new Error(`unknown variable ${JSON.stringify(match[1])} (use ${FUXI_VARIABLES.join(", ")})`);
    const value = Number(match[2]);
    if (value < 1 || value > 23) throw new Error(`${name}=${value}: float32 keeps 1 … 23 mantissa bits`);
    bits[name] = value;
  }
  return bits;
}

/** One entry per channel, in FuXi's channel order (upper-air variables × 13 levels, then surface). */
export function bitsPerChannel(bits: Record<FuxiVariable, number>): number[] {
  const upper: FuxiVariable[] = ["z", "t", "u", "v", "r"];
  const perChannel = [...upper.flatMap((v) => PRESSURE_LEVELS.map(() => bits[v])), bits.t2m, bits.u10, bits.v10, bits.msl, bits.tp];
  if (perChannel.length !== CHANNEL_NAMES.length) throw new Error("internal: channel table and variable table disagree");
  return perChannel;
}
