// Reads an ONNX model's graph signature (inputs, outputs, initializers and their external-data
// references) by streaming the protobuf, without loading weights: initializer data (raw_data and the
// typed *_data fields) and node definitions are skipped by seeking past them, so a model with
// embedded multi-GB weights costs a few small reads.
//
// Hand-written protobuf wire reader: the JS protobuf libraries decode a whole message from one
// buffer, which is exactly the "load everything" this module exists to avoid. Field numbers are
// those of onnx/onnx.proto (ModelProto, GraphProto, TensorProto, ValueInfoProto, TypeProto,
// TensorShapeProto, StringStringEntryProto).
import { open } from "node:fs/promises";

/** Random access to the bytes of one model file (a local file, an S3 object read with ranges, ...). */
export interface ByteSource {
  readonly size: number;
  /** Returns up to `length` bytes from `offset` (fewer only at the end). */
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

export async function fileByteSource(path: string): Promise<ByteSource> {
  const handle = await open(path, "r");
  const { size } = await handle.stat();
  return {
    size,
    async read(offset, length) {
      const buffer = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
      let done = 0;
      while (done < buffer.length) {
        const { bytesRead } = await handle.read(buffer, done, buffer.length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === buffer.length ? buffer : buffer.subarray(0, done);
    },
    close: () => handle.close(),
  };
}

/** ONNX TensorProto.DataType names and element sizes in bytes (0: not a fixed-size type). */
const DATA_TYPES: Record<number, [string, number]> = {
  1: ["float32", 4], 2: ["uint8", 1], 3: ["int8", 1], 4: ["uint16", 2], 5: ["int16", 2], 6: ["int32", 4],
  7: ["int64", 8], 8: ["string", 0], 9: ["bool", 1], 10: ["float16", 2], 11: ["float64", 8], 12: ["uint32", 4],
  13: ["uint64", 8], 14: ["complex64", 8], 15: ["complex128", 16], 16: ["bfloat16", 2],
  17: ["float8e4m3fn", 1], 18: ["float8e4m3fnuz", 1], 19: ["float8e5m2", 1], 20: ["float8e5m2fnuz", 1],
};

export function dataTypeName(code: number): string {
  return DATA_TYPES[code]?.[0] ?? `type ${code}`;
}

export interface TensorSignature {
  name: string;
  /** e.g. "float32"; undefined when the value has no tensor type. */
  type: string | undefined;
  /** Fixed sizes as numbers, symbolic ones (dim_param) as strings, unknown as undefined; undefined: no shape. */
  dims: (number | string | undefined)[] | undefined;
}

export interface ExternalDataReference {
  tensor: string;
  /** The `location` entry: a path relative to the model's folder. */
  location: string | undefined;
  offset: number;
  /** The `length` entry, when given. */
  length: number | undefined;
  /** Size the tensor's dims and type imply, when the type has a fixed size. */
  expectedBytes: number | undefined;
}

export interface OnnxGraphSummary {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  /** Graph inputs that are not initializers (what ONNX Runtime lists as session.inputNames). */
  inputs: TensorSignature[];
  outputs: TensorSignature[];
  initializers: number;
  externalData: ExternalDataReference[];
}

/** The bytes are not a readable ONNX model; `fault` says where the reading stopped. */
export class OnnxFormatError extends Error {
  constructor(readonly fault: string) {
    super(`not an ONNX model: ${fault}`);
    this.name = "OnnxFormatError";
  }
}

const CHUNK = 256 * 1024;
const MAX_STRING = 1 << 20;

/** A cursor over a ByteSource with one read-ahead window; skips cost nothing. */
class WireReader {
  private window: Uint8Array = new Uint8Array(0);
  private windowStart = 0;
  pos = 0;

  constructor(private readonly source: ByteSource) {}

  private async byteAt(position: number): Promise<number> {
    if (position < this.windowStart || position >= this.windowStart + this.window.length) {
      if (position >= this.source.size) throw new OnnxFormatError(`truncated at byte ${position} of ${this.source.size}`);
      this.window = await this.source.read(position, CHUNK);
      this.windowStart = position;
      if (this.window.length === 0) throw new OnnxFormatError(`cannot read byte ${position}`);
    }
    return this.window[position - this.windowStart]!;
  }

  async varint(): Promise<number> {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const byte = await this.byteAt(this.pos++);
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw new OnnxFormatError(`malformed varint ending at byte ${this.pos}`);
  }

  async bytes(length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; ) {
      await this.byteAt(this.pos + i);
      const from = this.pos + i - this.windowStart;
      const n = Math.min(length - i, this.window.length - from);
      out.set(this.window.subarray(from, from + n), i);
      i += n;
    }
    this.pos += length;
    return out;
  }

  async string(length: number, what: string): Promise<string> {
    if (length > MAX_STRING) throw new OnnxFormatError(`${what} is ${length} bytes long`);
    return new TextDecoder("utf-8", { fatal: true }).decode(await this.bytes(length));
  }
}

interface Field {
  number: number;
  wireType: number;
  /** Varint value, or the length of a length-delimited field. */
  value: number;
  /** Where a length-delimited field's payload starts. */
  start: number;
}

/** Calls `onField` for each field in [reader.pos, end); fields it does not consume are skipped. */
async function readMessage(reader: WireReader, end: number, what: string, onField: (field: Field) => Promise<void> | void): Promise<void> {
  while (reader.pos < end) {
    const at = reader.pos;
    const tag = await reader.varint();
    const field: Field = { number: Math.floor(tag / 8), wireType: tag % 8, value: 0, start: 0 };
    if (field.number === 0) throw new OnnxFormatError(`${what}: field number 0 at byte ${at}`);
    switch (field.wireType) {
      case 0:
        field.value = await reader.varint();
        break;
      case 1:
        reader.pos += 8;
        break;
      case 5:
        reader.pos += 4;
        break;
      case 2:
        field.value = await reader.varint();
        field.start = reader.pos;
        if (field.start + field.value > end) throw new OnnxFormatError(`${what}: field ${field.number} at byte ${at} runs ${field.start + field.value - end} bytes past its message`);
        break;
      default:
        throw new OnnxFormatError(`${what}: unsupported wire type ${field.wireType} at byte ${at}`);
    }
    if (field.wireType === 2) {
      await onField(field);
      reader.pos = field.start + field.value;
    } else {
      await onField(field);
    }
    if (reader.pos > end) throw new OnnxFormatError(`${what}: field ${field.number} at byte ${at} runs past its message`);
  }
}

async function readString(reader: WireReader, field: Field, what: string): Promise<string> {
  if (field.wireType !== 2) throw new OnnxFormatError(`${what} is not a string`);
  return reader.string(field.value, what);
}

async function readShape(reader: WireReader, end: number): Promise<(number | string | undefined)[]> {
  const dims: (number | string | undefined)[] = [];
  await readMessage(reader, end, "TensorShapeProto", async (field) => {
    if (field.number !== 1 || field.wireType !== 2) return;
    let dim: number | string | undefined;
    await readMessage(reader, field.start + field.value, "Dimension", async (d) => {
      if (d.number === 1 && d.wireType === 0) dim = d.value;
      if (d.number === 2) dim = await readString(reader, d, "dim_param");
    });
    dims.push(dim);
  });
  return dims;
}

async function readValueInfo(reader: WireReader, end: number): Promise<TensorSignature> {
  const signature: TensorSignature = { name: "", type: undefined, dims: undefined };
  await readMessage(reader, end, "ValueInfoProto", async (field) => {
    if (field.number === 1) signature.name = await readString(reader, field, "value name");
    if (field.number !== 2 || field.wireType !== 2) return;
    await readMessage(reader, field.start + field.value, "TypeProto", async (type) => {
      if (type.number !== 1 || type.wireType !== 2) return; // tensor_type; sequence/map types stay undefined
      await readMessage(reader, type.start + type.value, "TypeProto.Tensor", async (tensor) => {
        if (tensor.number === 1 && tensor.wireType === 0) signature.type = dataTypeName(tensor.value);
        if (tensor.number === 2 && tensor.wireType === 2) signature.dims = await readShape(reader, tensor.start + tensor.value);
      });
    });
  });
  return signature;
}

async function readDims(reader: WireReader, field: Field, dims: number[]): Promise<void> {
  if (field.wireType === 0) {
    dims.push(field.value);
    return;
  }
  const end = field.start + field.value; // packed
  while (reader.pos < end) dims.push(await reader.varint());
}

interface Initializer {
  name: string;
  external: boolean;
  reference: { location: string | undefined; offset: number | undefined; length: number | undefined };
  dims: number[];
  dataType: number;
}

async function readInitializer(reader: WireReader, end: number): Promise<Initializer> {
  const tensor: Initializer = { name: "", external: false, reference: { location: undefined, offset: undefined, length: undefined }, dims: [], dataType: 0 };
  await readMessage(reader, end, "TensorProto", async (field) => {
    switch (field.number) {
      case 1:
        return readDims(reader, field, tensor.dims);
      case 2:
        tensor.dataType = field.value;
        return;
      case 8:
        tensor.name = await readString(reader, field, "initializer name");
        return;
      case 14:
        tensor.external = field.value === 1;
        return;
      case 13: {
        let key = "";
        let value = "";
        await readMessage(reader, field.start + field.value, "StringStringEntryProto", async (entry) => {
          if (entry.number === 1) key = await readString(reader, entry, "external_data key");
          if (entry.number === 2) value = await readString(reader, entry, "external_data value");
        });
        const number = () => {
          if (!/^\d+$/.test(value)) throw new OnnxFormatError(`initializer ${tensor.name}: external_data ${key} is ${JSON.stringify(value)}, not a byte count`);
          return Number(value);
        };
        if (key === "location") tensor.reference.location = value;
        if (key === "offset") tensor.reference.offset = number();
        if (key === "length") tensor.reference.length = number();
        return;
      }
      default:
        return; // raw_data (9) and the typed data fields are skipped, never read
    }
  });
  return tensor;
}

async function readGraph(reader: WireReader, end: number): Promise<Omit<OnnxGraphSummary, "irVersion" | "opsets">> {
  const inputs: TensorSignature[] = [];
  const outputs: TensorSignature[] = [];
  const initializers: Initializer[] = [];
  await readMessage(reader, end, "GraphProto", async (field) => {
    if (field.wireType !== 2) return;
    const fieldEnd = field.start + field.value;
    if (field.number === 5) initializers.push(await readInitializer(reader, fieldEnd));
    if (field.number === 11) inputs.push(await readValueInfo(reader, fieldEnd));
    if (field.number === 12) outputs.push(await readValueInfo(reader, fieldEnd));
  });
  const initializerNames = new Set(initializers.map((t) => t.name));
  const externalData: ExternalDataReference[] = initializers
    .filter((t) => t.external)
    .map((t) => {
      const elementBytes = DATA_TYPES[t.dataType]?.[1] ?? 0;
      return {
        tensor: t.name,
        location: t.reference.location,
        offset: t.reference.offset ?? 0,
        length: t.reference.length,
        expectedBytes: elementBytes > 0 ? t.dims.reduce((n, d) => n * d, elementBytes) : undefined,
      };
    });
  return { inputs: inputs.filter((i) => !initializerNames.has(i.name)), outputs, initializers: initializers.length, externalData };
}

/** Reads the signature of the model in `source` (see the module comment); throws OnnxFormatError. */
export async function readOnnxGraph(source: ByteSource): Promise<OnnxGraphSummary> {
  const reader = new WireReader(source);
  let irVersion: number | undefined;
  const opsets: { domain: string; version: number }[] = [];
  let graph: Omit<OnnxGraphSummary, "irVersion" | "opsets"> | undefined;
  await readMessage(reader, source.size, "ModelProto", async (field) => {
    if (field.number === 1 && field.wireType === 0) irVersion = field.value;
    if (field.number === 7 && field.wireType === 2) graph = await readGraph(reader, field.start + field.value);
    if (field.number === 8 && field.wireType === 2) {
      const opset = { domain: "", version: 0 };
      await readMessage(reader, field.start + field.value, "OperatorSetIdProto", async (f) => {
        if (f.number === 1) opset.domain = await readString(reader, f, "opset domain");
        if (f.number === 2 && f.wireType === 0) opset.version = f.value;
      });
      opsets.push(opset);
    }
  });
  if (irVersion === undefined || irVersion < 1 || irVersion > 100) throw new OnnxFormatError(`no valid ir_version (field 1 of ModelProto)`);
  if (graph === undefined) throw new OnnxFormatError("no graph (field 7 of ModelProto)");
  return { irVersion, opsets, ...graph };
}

/** readOnnxGraph on a local file. */
export async function readOnnxGraphFile(path: string): Promise<OnnxGraphSummary> {
  const source = await fileByteSource(path);
  try {
    return await readOnnxGraph(source);
  } finally {
    await source.close();
  }
}
