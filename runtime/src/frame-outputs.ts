// Extra outputs added to a stage's graph at load time, so that a step fetches only the new frame
// `out[:, 1]` (290 MB at 721x1440) instead of the whole window (581 MB), which onnxruntime-node 1.30
// copies once more on its way to JS. The next window is then `[in[:, 1], out[:, 1]]`, which is the
// model's own window only if `out[:, 0] == in[:, 1]` (the resume path relies on the same property).
// Two small strided samples, `out[:, 0]` and `in[:, 1]` on every CHECK_STRIDE-th row and column of
// every channel, are fetched too and compared bit for bit each step; the inference worker falls back
// to the whole window with a warning when they differ.
//
// The fragment is appended to the .onnx bytes as a second `graph` field (ModelProto field 7):
// protobuf parsers merge repeated occurrences of an embedded message, concatenating its repeated
// fields (https://protobuf.dev/programming-guides/encoding/#last-one-wins), so ONNX Runtime sees the
// original graph with three more Slice nodes, their constant inputs and three more outputs; the
// weights file is untouched. Hand-written because it is a few fields of four ONNX messages; a
// protobuf library would need the ONNX schema in the runtime for that.
import { CHANNELS } from "./model-check";
import type { OnnxGraphSummary } from "./onnx-graph";

export const NEW_FRAME_OUTPUT = "fuxi_runtime_new_frame";
export const CHECK_OUTPUT_SAMPLE = "fuxi_runtime_check_out0";
export const CHECK_INPUT_SAMPLE = "fuxi_runtime_check_in1";
/** Every 7th latitude row and longitude column: 1/49 of each field, all 70 channels (7 is odd, so it meets every residue of FuXi's 4x4 patches). */
export const CHECK_STRIDE = 7;

/** Slice with starts/ends/axes/steps as inputs exists from opset 10 on. */
const MIN_OPSET = 10;
const FLOAT = 1;
const INT64 = 7;

function varint(value: number): number[] {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`internal: varint ${value}`);
  const bytes: number[] = [];
  while (value >= 0x80) {
    bytes.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  bytes.push(value);
  return bytes;
}

const concat = (parts: number[][]): number[] => parts.flat();
const bytesField = (field: number, payload: number[]): number[] => [...varint(field * 8 + 2), ...varint(payload.length), ...payload];
const stringField = (field: number, text: string): number[] => bytesField(field, [...new TextEncoder().encode(text)]);
const varintField = (field: number, value: number): number[] => [...varint(field * 8), ...varint(value)];

// TensorProto: dims 1, data_type 2, int64_data 7 (packed), name 8.
function int64Initializer(name: string, values: number[]): number[] {
  return concat([varintField(1, values.length), varintField(2, INT64), bytesField(7, concat(values.map(varint))), stringField(8, name)]);
}

// NodeProto: input 1, output 2, name 3, op_type 4.
function sliceNode(name: string, data: string, output: string, constants: string): number[] {
  const inputs = [data, ...["starts", "ends", "axes", "steps"].map((part) => `${constants}_${part}`)];
  return concat([...inputs.map((input) => stringField(1, input)), stringField(2, output), stringField(3, name), stringField(4, "Slice")]);
}

// ValueInfoProto name 1, type 2; TypeProto tensor_type 1; Tensor elem_type 1, shape 2; shape dim 1; dim_value 1.
function floatOutput(name: string, dims: number[]): number[] {
  const shape = concat(dims.map((d) => bytesField(1, varintField(1, d))));
  return concat([stringField(1, name), bytesField(2, bytesField(1, concat([varintField(1, FLOAT), bytesField(2, shape)])))]);
}

export interface FrameOutputsPlan {
  windowInput: string;
  output: string;
  lat: number;
  lon: number;
}

/** Why a graph cannot take the extra outputs (the worker then fetches the whole window), or undefined. */
export function frameOutputsUnsupported(graph: OnnxGraphSummary): string | undefined {
  const opset = graph.opsets.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version;
  if (opset === undefined || opset < MIN_OPSET) return `its default-domain opset is ${opset ?? "missing"}; Slice with step inputs needs ${MIN_OPSET}`;
  const taken = [...graph.inputs, ...graph.outputs].map((t) => t.name);
  const clash = [NEW_FRAME_OUTPUT, CHECK_OUTPUT_SAMPLE, CHECK_INPUT_SAMPLE].find((name) => taken.includes(name));
  return clash === undefined ? undefined : `it already has a value named ${clash}`;
}

/** The model bytes with the three extra outputs appended (see the module comment). */
export function withFrameOutputs(model: Uint8Array, plan: FrameOutputsPlan): Uint8Array {
  const { windowInput, output, lat, lon } = plan;
  const slices: Array<{ name: string; data: string; starts: number[]; ends: number[]; axes: number[]; steps: number[]; dims: number[] }> = [
    { name: NEW_FRAME_OUTPUT, data: output, starts: [1], ends: [2], axes: [1], steps: [1], dims: [1, 1, CHANNELS, lat, lon] },
    { name: CHECK_OUTPUT_SAMPLE, data: output, starts: [0, 0, 0], ends: [1, lat, lon], axes: [1, 3, 4], steps: [1, CHECK_STRIDE, CHECK_STRIDE], dims: [1, 1, CHANNELS, sampled(lat), sampled(lon)] },
    { name: CHECK_INPUT_SAMPLE, data: windowInput, starts: [1, 0, 0], ends: [2, lat, lon], axes: [1, 3, 4], steps: [1, CHECK_STRIDE, CHECK_STRIDE], dims: [1, 1, CHANNELS, sampled(lat), sampled(lon)] },
  ];
  const graph: number[][] = [];
  for (const slice of slices) {
    graph.push(bytesField(1, sliceNode(`${slice.name}_slice`, slice.data, slice.name, slice.name)));
    for (const part of ["starts", "ends", "axes", "steps"] as const) graph.push(bytesField(5, int64Initializer(`${slice.name}_${part}`, slice[part])));
    graph.push(bytesField(12, floatOutput(slice.name, slice.dims)));
  }
  const suffix = Uint8Array.from(bytesField(7, concat(graph)));
  const result = new Uint8Array(model.length + suffix.length);
  result.set(model, 0);
  result.set(suffix, model.length);
  return result;
}

/** Length of a strided sample of `n` values. */
export function sampled(n: number): number {
  return Math.ceil(n / CHECK_STRIDE);
}
