// Stand-in FuXi models: real ONNX files with FuXi's exact input/output contract on any grid,
// and math simple enough that tests can compute the expected output independently.
//
// The ONNX protobuf is hand-written with protobufjs because no maintained JS library builds
// ONNX graphs (the `onnx` Python package is not reachable here). The schema below is the subset
// of onnx.proto (field numbers copied from onnx/onnx.proto, IR version 8) that these graphs use.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as protobuf from "protobufjs";
import { CHANNEL_NAMES, STAGE_NAMES, type StageName } from "../runtime/src/contract";

export const STAGES = STAGE_NAMES;
export type Stage = StageName;

export const CHANNELS = CHANNEL_NAMES.length;
export const TEMB_LENGTH = 12;

export interface Grid {
  lat: number;
  lon: number;
}

export interface StandinOptions extends Grid {
  /** Extra element-wise ops per step, to make session.run cost tunable for the benchmark. */
  opsPerStep?: number;
}

/** Per-stage constants: out[:,1] = in[:,1] * scale + offset[channel] + sum(temb) * tembWeight. */
export interface StageConstants {
  scale: number;
  offsets: Float32Array;
  tembWeight: number;
  outputName: string;
}

// Scales near 1 and small offsets keep the stand-in's fields physically plausible over a 15-day run
// (the quick-look maps of the local pipeline stay readable); the stages still differ in every constant.
export function stageConstants(stage: Stage): StageConstants {
  const offsets = new Float32Array(CHANNELS);
  switch (stage) {
    case "short":
      for (let c = 0; c < CHANNELS; c++) offsets[c] = 0.05 + c * 0.0005;
      return { scale: 0.999, offsets, tembWeight: 0.01, outputName: "output" };
    case "medium":
      for (let c = 0; c < CHANNELS; c++) offsets[c] = -0.001 * c;
      return { scale: 1.001, offsets, tembWeight: -0.02, outputName: "medium_output" };
    case "long":
      for (let c = 0; c < CHANNELS; c++) offsets[c] = 0.025 - 0.00025 * c;
      return { scale: 0.9995, offsets, tembWeight: 0.03, outputName: "long_output" };
  }
}

/**
 * Pure reference of one stand-in step (opsPerStep = 0): window is [2,70,lat,lon] (batch dim dropped),
 * returns the next window [2,70,lat,lon]. Float32 rounding after every op, as ONNX Runtime does.
 * The graph sums temb in float64, where the sum of FuXi's 12 values (all 0 or ≥ 2^-9 in magnitude)
 * is exact in any order, so the reference matches ONNX Runtime bit for bit.
 */
export function standinReferenceStep(stage: Stage, window: Float32Array, temb: ArrayLike<number>, grid: Grid): Float32Array {
  const frame = CHANNELS * grid.lat * grid.lon;
  if (window.length !== 2 * frame) throw new Error(`window has ${window.length} values, expected ${2 * frame}`);
  if (temb.length !== TEMB_LENGTH) throw new Error(`temb has ${temb.length} values, expected ${TEMB_LENGTH}`);
  const { scale, offsets, tembWeight } = stageConstants(stage);
  let tembSum = 0;
  for (let i = 0; i < TEMB_LENGTH; i++) tembSum += Math.fround(temb[i]);
  const tembTerm = Math.fround(tembSum * tembWeight);
  const fScale = Math.fround(scale);
  const out = new Float32Array(2 * frame);
  out.set(window.subarray(frame), 0);
  const plane = grid.lat * grid.lon;
  for (let c = 0; c < CHANNELS; c++) {
    const offset = offsets[c];
    const base = frame + c * plane;
    for (let p = 0; p < plane; p++) {
      out[base + p] = Math.fround(Math.fround(Math.fround(window[base + p] * fScale) + offset) + tembTerm);
    }
  }
  return out;
}

const ONNX_SCHEMA = `
syntax = "proto3";
package onnx;
message ModelProto {
  int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  string producer_name = 2;
  string producer_version = 3;
  GraphProto graph = 7;
}
message OperatorSetIdProto { string domain = 1; int64 version = 2; }
message GraphProto {
  repeated NodeProto node = 1;
  string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  string name = 3;
  string op_type = 4;
  repeated AttributeProto attribute = 5;
}
message AttributeProto {
  string name = 1;
  int64 i = 3;
  int32 type = 20;
}
message StringStringEntryProto { string key = 1; string value = 2; }
message TensorProto {
  repeated int64 dims = 1;
  int32 data_type = 2;
  repeated int64 int64_data = 7;
  string name = 8;
  bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13;
  int32 data_location = 14;
}
message ValueInfoProto { string name = 1; TypeProto type = 2; }
message TypeProto {
  message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; }
  Tensor tensor_type = 1;
}
message TensorShapeProto {
  message Dimension { int64 dim_value = 1; }
  repeated Dimension dim = 1;
}
`;

const FLOAT = 1;
const INT64 = 7;
const DOUBLE = 11;
const ATTRIBUTE_INT = 2;
const EXTERNAL = 1;

const modelType = protobuf.parse(ONNX_SCHEMA, { keepCase: true }).root.lookupType("onnx.ModelProto");

function valueInfo(name: string, dims: number[]) {
  return { name, type: { tensor_type: { elem_type: FLOAT, shape: { dim: dims.map((d) => ({ dim_value: d })) } } } };
}

function node(opType: string, inputs: string[], outputs: string[], attributes: Record<string, number> = {}) {
  return {
    op_type: opType,
    name: `${opType}_${outputs[0]}`,
    input: inputs,
    output: outputs,
    attribute: Object.entries(attributes).map(([name, i]) => ({ name, i, type: ATTRIBUTE_INT })),
  };
}

/** Builds one stage's .onnx bytes and its external weights file contents. */
export function buildStandinModel(stage: Stage, options: StandinOptions): { onnx: Uint8Array; weights: Uint8Array } {
  const { lat, lon } = options;
  const opsPerStep = options.opsPerStep ?? 0;
  if (!Number.isInteger(lat) || lat < 2 || !Number.isInteger(lon) || lon < 1) throw new Error(`invalid grid ${lat}x${lon}`);
  if (!Number.isInteger(opsPerStep) || opsPerStep < 0) throw new Error(`opsPerStep must be a non-negative integer, got ${opsPerStep}`);
  const constants = stageConstants(stage);

  // External weights: offsets[70] at 0, scale at 512, tembWeight (float64) at 576, zero at 640 (64-byte aligned).
  const weights = new Uint8Array(704);
  const view = new DataView(weights.buffer);
  constants.offsets.forEach((v, c) => view.setFloat32(c * 4, v, true));
  view.setFloat32(512, constants.scale, true);
  view.setFloat64(576, constants.tembWeight, true);
  view.setFloat32(640, 0, true);
  const external = (name: string, dims: number[], offset: number, length: number, dataType = FLOAT) => ({
    name,
    dims,
    data_type: dataType,
    data_location: EXTERNAL,
    external_data: [
      { key: "location", value: stage },
      { key: "offset", value: String(offset) },
      { key: "length", value: String(length) },
    ],
  });
  const int64s = (name: string, values: number[]) => ({ name, dims: [values.length], data_type: INT64, int64_data: values });

  const nodes = [
    node("Slice", ["input", "slice_start", "slice_end", "slice_axis"], ["current"]),
    node("Mul", ["current", "scale"], ["scaled"]),
    node("Add", ["scaled", "offsets"], ["shifted"]),
    node("Cast", ["temb"], ["temb64"], { to: DOUBLE }),
    node("ReduceSum", ["temb64"], ["temb_sum"], { keepdims: 1 }),
    node("Mul", ["temb_sum", "temb_weight"], ["temb_term64"]),
    node("Cast", ["temb_term64"], ["temb_term"], { to: FLOAT }),
  ];
  let next = "next";
  nodes.push(node("Add", ["shifted", "temb_term"], [opsPerStep > 0 ? "next_plain" : next]));
  if (opsPerStep > 0) {
    // Busy work that cannot change the result: a chain of Sin ops, multiplied by zero and added.
    let chain = "current";
    for (let k = 0; k < opsPerStep; k++) {
      nodes.push(node("Sin", [chain], [`busy_${k}`]));
      chain = `busy_${k}`;
    }
    nodes.push(node("Mul", [chain, "zero"], ["busy_zero"]));
    nodes.push(node("Add", ["next_plain", "busy_zero"], [next]));
  }
  nodes.push(node("Concat", ["current", next], [constants.outputName], { axis: 1 }));

  const model = {
    ir_version: 8,
    opset_import: [{ domain: "", version: 17 }],
    producer_name: "fuxi-standin",
    producer_version: "1",
    graph: {
      name: `fuxi_standin_${stage}`,
      node: nodes,
      initializer: [
        int64s("slice_start", [1]),
        int64s("slice_end", [2]),
        int64s("slice_axis", [1]),
        external("offsets", [1, 1, CHANNELS, 1, 1], 0, CHANNELS * 4),
        external("scale", [], 512, 4),
        external("temb_weight", [], 576, 8, DOUBLE),
        ...(opsPerStep > 0 ? [external("zero", [], 640, 4)] : []),
      ],
      input: [valueInfo("input", [1, 2, CHANNELS, lat, lon]), valueInfo("temb", [1, TEMB_LENGTH])],
      output: [valueInfo(constants.outputName, [1, 2, CHANNELS, lat, lon])],
    },
  };
  const message = modelType.fromObject(model);
  const problem = modelType.verify(message);
  if (problem) throw new Error(`stand-in ONNX model for ${stage} is invalid: ${problem}`);
  return { onnx: modelType.encode(message).finish(), weights };
}

/** Writes short.onnx+short, medium.onnx+medium, long.onnx+long into dir (created if needed). */
export async function writeStandinModels(dir: string, options: StandinOptions): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const stage of STAGES) {
    const { onnx, weights } = buildStandinModel(stage, options);
    await writeFile(join(dir, `${stage}.onnx`), onnx);
    await writeFile(join(dir, stage), weights);
  }
}

/**
 * Decodes an ONNX model written by this module, lets `edit` change it as a plain object (fields named as
 * in onnx.proto, e.g. graph.output, graph.initializer), and encodes it again: tests plant faults this way.
 */
export function editOnnxModel(onnx: Uint8Array, edit: (model: any) => void): Uint8Array {
  const model = modelType.toObject(modelType.decode(onnx), { longs: Number, bytes: Buffer, defaults: false });
  edit(model);
  return modelType.encode(modelType.fromObject(model)).finish();
}
