/**
 * Quick-look maps for a forecast output folder (local or s3://bucket/prefix/): T2M, Z500, MSL
 * and TP at chosen leads (the nearest step that exists), one PNG per variable and lead.
 */
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { readForecastStep, type ForecastStep } from "../runtime/src/netcdf";
import { formatS3Uri, parseS3Uri, stepFileNameForLead } from "../runtime/src/contract";
import { ColourScheme, IMAGE_HEIGHT, IMAGE_WIDTH, renderMapPng, robustRange } from "./quicklook-render";

export const DEFAULT_LEADS = [24, 120, 240, 360];
const STEP_FILE = /^(\d{3})\.nc$/;

export interface QuicklookVariable {
  id: string;
  /** Name in the file's `level` coordinate (matched case-insensitively). */
  channel: string;
  label: string;
  units: string;
  scheme: ColourScheme;
  toDisplay: (value: number) => number;
  /** Precipitation: the colour range starts at 0. */
  fromZero?: boolean;
}

export const QUICKLOOK_VARIABLES: readonly QuicklookVariable[] = [
  { id: "t2m", channel: "t2m", label: "2 m temperature", units: "deg C", scheme: "turbo", toDisplay: (k) => k - 273.15 },
  { id: "z500", channel: "z500", label: "500 hPa geopotential height", units: "dam", scheme: "viridis", toDisplay: (z) => z / 9.80665 / 10 },
  { id: "msl", channel: "msl", label: "mean sea-level pressure", units: "hPa", scheme: "rdbu", toDisplay: (pa) => pa / 100 },
  { id: "tp", channel: "tp", label: "6-hour precipitation", units: "mm", scheme: "blues", toDisplay: (mm) => mm, fromZero: true },
];

/** Where forecast steps are read from. */
export interface StepSource {
  describe: string;
  /** Lead hours present, ascending. */
  leads(): Promise<number[]>;
  read(leadHours: number): Promise<{ bytes: Uint8Array; name: string }>;
}

export function localStepSource(folder: string): StepSource {
  return {
    describe: folder,
    async leads() {
      let names: string[];
      try {
        names = await readdir(folder);
      } catch (error) {
        throw new Error(`quicklook: cannot read folder ${folder}: ${(error as Error).message}`);
      }
      return leadsFromNames(names);
    },
    async read(lead) {
      const name = join(folder, stepFileNameForLead(lead));
      return { bytes: new Uint8Array(await readFile(name)), name };
    },
  };
}

export function s3StepSource(client: S3Client, uri: string): StepSource {
  const location = parseS3Uri(uri);
  if (!location) throw new Error(`quicklook: ${JSON.stringify(uri)} is not s3://bucket/prefix/`);
  const { bucket, key: rawPrefix } = location;
  const prefix = rawPrefix === "" || rawPrefix.endsWith("/") ? rawPrefix : `${rawPrefix}/`;
  return {
    describe: formatS3Uri({ bucket, key: prefix }),
    async leads() {
      const names: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: "/", ContinuationToken: token }));
        for (const object of page.Contents ?? []) if (object.Key) names.push(object.Key.slice(prefix.length));
        token = page.NextContinuationToken;
      } while (token);
      return leadsFromNames(names);
    },
    async read(lead) {
      const key = `${prefix}${stepFileNameForLead(lead)}`;
      const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return { bytes: await object.Body!.transformToByteArray(), name: formatS3Uri({ bucket, key }) };
    },
  };
}



function leadsFromNames(names: string[]): number[] {
  return names
    .map((name) => STEP_FILE.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** For each wanted lead, the nearest available one (ties go to the earlier); duplicates removed, ascending. */
export function chooseLeads(available: number[], wanted: number[]): number[] {
  if (available.length === 0) return [];
  const chosen = new Set<number>();
  for (const target of wanted) {
    let best = available[0];
    for (const lead of available) if (Math.abs(lead - target) < Math.abs(best - target)) best = lead;
    chosen.add(best);
  }
  return [...chosen].sort((a, b) => a - b);
}

export interface QuicklookOptions {
  source: StepSource;
  outDir: string;
  leads?: number[];
  variables?: readonly QuicklookVariable[];
  /** Extra words for every title, e.g. "SYNTHETIC input, stand-in model". */
  note?: string;
  /** One colour range per variable across all leads (to compare them) instead of one per map. */
  sharedRange?: boolean;
}

export interface QuicklookImage {
  file: string;
  variable: string;
  leadHours: number;
  width: number;
  height: number;
}

export async function renderQuicklooks(options: QuicklookOptions): Promise<QuicklookImage[]> {
  const available = await options.source.leads();
  if (available.length === 0) throw new Error(`quicklook: no forecast steps (NNN.nc) in ${options.source.describe}`);
  const leads = chooseLeads(available, options.leads ?? DEFAULT_LEADS);
  const variables = options.variables ?? QUICKLOOK_VARIABLES;
  await mkdir(options.outDir, { recursive: true });

  const steps: ForecastStep[] = [];
  for (const lead of leads) {
    const { bytes, name } = await options.source.read(lead);
    steps.push(await readForecastStep(bytes, name));
  }

  const images: QuicklookImage[] = [];
  for (const variable of variables) {
    const fields = steps.map((step) => displayField(step, variable));
    const shared = colourRange(variable, fields);
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i];
      const range = options.sharedRange ? shared : colourRange(variable, [fields[i]]);
      const png = await renderMapPng(
        { values: fields[i], lat: step.lat, lon: step.lon },
        { title: titleLines(variable, step, options.note), units: variable.units, scheme: variable.scheme, range },
      );
      const file = join(options.outDir, `${variable.id}_${String(step.leadHours).padStart(3, "0")}h.png`);
      await writeFile(file, png);
      images.push({ file, variable: variable.id, leadHours: step.leadHours, width: IMAGE_WIDTH, height: IMAGE_HEIGHT });
    }
  }
  return images;
}

/** 1st-99th percentile of the fields; precipitation starts at 0 and spans at least 1 mm. */
function colourRange(variable: QuicklookVariable, fields: Float32Array[]): [number, number] {
  const ends = fields.flatMap((f) => robustRange(f));
  const high = Math.max(...ends);
  return variable.fromZero ? [0, Math.max(1, high)] : [Math.min(...ends), high];
}

function displayField(step: ForecastStep, variable: QuicklookVariable): Float32Array {
  const channel = step.levels.findIndex((level) => level.toLowerCase() === variable.channel);
  if (channel < 0) throw new Error(`quicklook: step +${step.leadHours}h has no "${variable.channel}" level (levels: ${step.levels.slice(0, 5).join(", ")}, ...)`);
  const cells = step.lat.length * step.lon.length;
  return step.data.subarray(channel * cells, (channel + 1) * cells).map(variable.toDisplay);
}

export function titleLines(variable: QuicklookVariable, step: ForecastStep, note?: string): string[] {
  const valid = new Date(step.initTime.getTime() + step.leadHours * 3_600_000);
  const lines = [
    `${variable.id.toUpperCase()}  ${variable.label} (${variable.units})`,
    `+${step.leadHours} h   valid ${formatTime(valid)}   init ${formatTime(step.initTime)}`,
  ];
  if (note) lines.push(note);
  return lines;
}

function formatTime(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace("T", " ")}Z`;
}
