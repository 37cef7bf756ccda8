// FuXi's model-file rules, checked on a graph summary (onnx-graph.ts) without loading weights:
// the signature of each stage's .onnx and that its external data lies inside its weights file.
// Pure functions returning every fault found; callers decide how to report them.
import type { ExternalDataReference, OnnxGraphSummary, TensorSignature } from "./onnx-graph";

/** Written next to the six files by `npm run models -- upload`: their names, sizes and SHA-256. */
export const MODELS_MANIFEST = "fuxi-models.json";

export const CHANNELS = 70;
export const TEMB_LENGTH = 12;
/** FuXi's published models run on the 0.25° grid. */
export const FUXI_GRID = { lat: 721, lon: 1440 } as const;

export interface Grid {
  lat: number;
  lon: number;
}

function shape(dims: TensorSignature["dims"]): string {
  return dims === undefined ? "no shape" : `[${dims.map((d) => (d === undefined ? "?" : String(d))).join(",")}]`;
}

function tensorFaults(what: string, actual: TensorSignature, expected: (number | undefined)[]): string[] {
  const faults: string[] = [];
  if (actual.type !== "float32") faults.push(`${what} is ${actual.type ?? "not a tensor"}, expected float32`);
  const dims = actual.dims;
  const matches = dims !== undefined && dims.length === expected.length && expected.every((e, i) => (e === undefined ? typeof dims[i] === "number" && (dims[i] as number) > 0 : dims[i] === e));
  if (!matches) faults.push(`${what} has shape ${shape(dims)}, expected ${shape(expected.map((e) => e ?? "lat/lon"))}`);
  return faults;
}

/**
 * Faults of a FuXi stage's signature: two inputs, the window [1,2,70,lat,lon] and the time embedding
 * [1,12], told apart by rank as the inference worker feeds them (FuXi's graphs call them `input` and
 * `temb`, but names are read from the graph, not assumed); one output [1,2,70,lat,lon]; all float32.
 * `grid` defaults to FuXi's 721x1440; `null` accepts any grid (stand-ins), as long as the output's
 * grid equals the input's.
 */
export function signatureFaults(graph: OnnxGraphSummary, grid: Grid | null = FUXI_GRID): string[] {
  const faults: string[] = [];
  const listed = graph.inputs.map((i) => `${i.name} ${shape(i.dims)}`).join(", ") || "none";
  const input = graph.inputs.find((i) => i.dims?.length === 5);
  const temb = graph.inputs.find((i) => i.dims?.length === 2);
  const extra = graph.inputs.filter((i) => i !== input && i !== temb).map((i) => i.name);
  if (!input) faults.push(`has no 5-D window input [1,2,70,lat,lon] (inputs: ${listed})`);
  if (!temb) faults.push(`has no 2-D time-embedding input [1,12] (inputs: ${listed})`);
  if (extra.length > 0) faults.push(`has inputs FuXi does not feed: ${extra.join(", ")}`);
  const window = [1, 2, CHANNELS, grid?.lat, grid?.lon];
  if (input) faults.push(...tensorFaults(`input "${input.name}"`, input, window));
  if (temb) faults.push(...tensorFaults(`input "${temb.name}"`, temb, [1, TEMB_LENGTH]));
  if (graph.outputs.length !== 1) {
    faults.push(`has ${graph.outputs.length} outputs (${graph.outputs.map((o) => o.name).join(", ") || "none"}), expected one`);
  } else {
    const output = graph.outputs[0]!;
    const sameGrid = grid ?? (input?.dims && typeof input.dims[3] === "number" ? { lat: input.dims[3] as number, lon: input.dims[4] as number } : null);
    faults.push(...tensorFaults(`output "${output.name}"`, output, [1, 2, CHANNELS, sameGrid?.lat, sameGrid?.lon]));
  }
  return faults;
}

/** Faults of the external-data references: each must name `weightsFile` and lie within its `weightsBytes`. */
export function externalDataFaults(graph: OnnxGraphSummary, weightsFile: string, weightsBytes: number | undefined): string[] {
  const faults: string[] = [];
  for (const ref of graph.externalData) {
    const span = (r: ExternalDataReference) => r.length ?? r.expectedBytes;
    if (ref.location !== weightsFile) {
      faults.push(`tensor ${ref.tensor} references external data in ${JSON.stringify(ref.location ?? "(no location)")}, expected its weights file "${weightsFile}" next to it`);
      continue;
    }
    const length = span(ref);
    if (ref.length !== undefined && ref.expectedBytes !== undefined && ref.length !== ref.expectedBytes) {
      faults.push(`tensor ${ref.tensor}: external data length ${ref.length} differs from the ${ref.expectedBytes} bytes its shape and type need`);
    }
    if (weightsBytes !== undefined && length !== undefined && ref.offset + length > weightsBytes) {
      faults.push(`${weightsBytes} bytes, but tensor ${ref.tensor} of ${weightsFile}.onnx lies at bytes ${ref.offset}..${ref.offset + length} (truncated?)`);
    }
  }
  return faults;
}
