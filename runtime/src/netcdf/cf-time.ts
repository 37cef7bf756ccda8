const UNIT_MS: Record<string, number> = {
  day: 86_400_000,
  days: 86_400_000,
  d: 86_400_000,
  hour: 3_600_000,
  hours: 3_600_000,
  hr: 3_600_000,
  hrs: 3_600_000,
  h: 3_600_000,
  minute: 60_000,
  minutes: 60_000,
  min: 60_000,
  mins: 60_000,
  second: 1000,
  seconds: 1000,
  sec: 1000,
  secs: 1000,
  s: 1000,
};

/** Calendars in which a CF time offset is plain elapsed time on the proleptic Gregorian calendar here. */
const GREGORIAN_CALENDARS = new Set(["standard", "gregorian", "proleptic_gregorian"]);

/** Where "standard"/"gregorian" switch from Julian to Gregorian; earlier reference dates would need Julian arithmetic. */
const GREGORIAN_START_MS = Date.UTC(1582, 9, 15);

export interface CfTimeUnits {
  unitMs: number;
  epochMs: number;
}

const REFERENCE_DATE =
  /^(-?\d{1,4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d+))?)?)?\s*(Z|UTC|GMT|[+-]\d{1,2}(?::?\d{2})?)?$/i;

/**
 * Parses CF time units such as "hours since 1900-01-01 00:00:00" for the Gregorian calendars.
 * Throws an Error whose message is the fault (callers wrap it with the file name).
 * Hand-written: no maintained npm package decodes CF time units.
 */
export function parseCfTimeUnits(units: string | undefined, calendar: string | undefined): CfTimeUnits {
  if (units === undefined) throw new Error("has no units attribute (expected e.g. 'hours since 1900-01-01')");
  const match = /^\s*(\w+)\s+since\s+(.+?)\s*$/i.exec(units);
  if (!match) throw new Error(`units '${units}' are not CF time units ('<unit> since <date>')`);
  const unitMs = UNIT_MS[match[1].toLowerCase()];
  if (unitMs === undefined) throw new Error(`units '${units}': unknown time unit '${match[1]}' (use days, hours, minutes or seconds)`);
  const date = REFERENCE_DATE.exec(match[2]);
  if (!date) throw new Error(`units '${units}': cannot read the reference date '${match[2]}'`);
  const [, year, month, day, hour = "0", minute = "0", second = "0", fraction = "0", zone] = date;
  const offsetMs = zoneOffsetMs(zone);
  const utc = new Date(0);
  utc.setUTCFullYear(Number(year), Number(month) - 1, Number(day));
  utc.setUTCHours(Number(hour), Number(minute), Number(second), Math.round(Number(`0.${fraction}`) * 1000));
  if (utc.getUTCMonth() !== Number(month) - 1 || utc.getUTCDate() !== Number(day)) {
    throw new Error(`units '${units}': '${match[2]}' is not a valid date`);
  }
  const epochMs = utc.getTime() - offsetMs;
  const cal = (calendar ?? "standard").trim().toLowerCase();
  if (!GREGORIAN_CALENDARS.has(cal)) {
    throw new Error(`calendar '${calendar}' is not supported (use standard, gregorian or proleptic_gregorian)`);
  }
  if (cal !== "proleptic_gregorian" && epochMs < GREGORIAN_START_MS) {
    throw new Error(`units '${units}' with calendar '${cal}': reference dates before 1582-10-15 mix Julian and Gregorian days; use proleptic_gregorian`);
  }
  return { unitMs, epochMs };
}

function zoneOffsetMs(zone: string | undefined): number {
  if (!zone || /^(Z|UTC|GMT)$/i.test(zone)) return 0;
  const m = /^([+-])(\d{1,2}):?(\d{2})?$/.exec(zone);
  if (!m) throw new Error(`unknown time zone '${zone}'`);
  const sign = m[1] === "-" ? -1 : 1;
  return sign * (Number(m[2]) * 60 + Number(m[3] ?? 0)) * 60_000;
}

/** Decodes one CF time value to a Date, rounded to the millisecond. */
export function decodeCfTime(value: number, units: CfTimeUnits): Date {
  return new Date(Math.round(units.epochMs + value * units.unitMs));
}

/** The units the runtime writes: whole hours since the Unix epoch. */
export const OUTPUT_TIME_UNITS = "hours since 1970-01-01 00:00:00";
export const OUTPUT_CALENDAR = "proleptic_gregorian";
