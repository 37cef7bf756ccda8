import type { AttributeValue, SourceFile, SourceType, SourceVariable } from "./source";

// netcdfjs is ESM-only, like h5wasm.
type NetcdfJs = typeof import("netcdfjs", { with: { "resolution-mode": "import" } });
let loading: Promise<NetcdfJs> | undefined;
const loadNetcdfJs = () => (loading ??= import("netcdfjs"));

const ELEMENT_BYTES: Record<string, number> = { byte: 1, char: 1, short: 2, int: 4, float: 4, double: 8 };

/** Thrown for files that netcdfjs cannot parse at all; the message is the fault. */
export class Cdf3FormatError extends Error {}

/**
 * The netCDF-3 (classic / 64-bit offset) reader: netcdfjs parses the header; values are decoded here
 * straight from the big-endian bytes at each variable's offset, because netcdfjs returns plain JS
 * arrays (1 GB+ for a FuXi input) and does not check that the data is actually in the file.
 */
export async function cdf3Source(bytes: Uint8Array): Promise<SourceFile> {
  const { NetCDFReader } = await loadNetcdfJs();
  let reader: InstanceType<NetcdfJs["NetCDFReader"]>;
  try {
    reader = new NetCDFReader(bytes);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    if (bytes[3] === 5) throw new Cdf3FormatError(`is CDF-5 (64-bit data) netCDF-3, which is not supported; convert it with 'nccopy -k netCDF-4 in.nc out.nc' (${detail})`);
    throw new Cdf3FormatError(`has a broken netCDF-3 header (truncated or corrupt?): ${detail}`);
  }
  const { dimensions, variables: headerVariables, recordDimension } = reader.header;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  const variables: (SourceVariable & { offset: number; record: boolean })[] = headerVariables.map((v) => {
    const attrs = new Map<string, AttributeValue>();
    for (const a of v.attributes as { name: string; value: AttributeValue }[]) attrs.set(a.name, a.value);
    return {
      name: v.name,
      dims: v.dimensions.map((id) => dimensions[id].name),
      shape: v.dimensions.map((id) => (id === recordDimension.id ? recordDimension.length : dimensions[id].size)),
      type: (v.type in ELEMENT_BYTES ? v.type : "other") as SourceType,
      attr: (name: string) => attrs.get(name),
      offset: v.offset,
      record: v.record,
    };
  });

  const info = (variable: SourceVariable) => {
    const found = variables.find((v) => v.name === variable.name);
    if (!found) throw new Error(`no variable ${variable.name}`);
    return found;
  };

  /** Byte offset of leading index `index`, checked against the file length. */
  const slab = (variable: SourceVariable, index: number, elementsPerSlab: number) => {
    const v = info(variable);
    const size = ELEMENT_BYTES[v.type];
    const start = v.record ? v.offset + index * (recordDimension.recordStep ?? 0) : v.offset + index * elementsPerSlab * size;
    const end = start + elementsPerSlab * size;
    if (end > bytes.byteLength) {
      throw new Cdf3FormatError(`is truncated: variable '${v.name}' needs bytes up to ${end} but the file has ${bytes.byteLength}`);
    }
    return start;
  };

  const readNumber = (type: SourceType, position: number): number => {
    switch (type) {
      case "byte":
        return view.getInt8(position);
      case "short":
        return view.getInt16(position, false);
      case "int":
        return view.getInt32(position, false);
      case "float":
        return view.getFloat32(position, false);
      case "double":
        return view.getFloat64(position, false);
      default:
        throw new Error(`type ${type} is not numeric`);
    }
  };

  const forEachSlab = (variable: SourceVariable, visit: (start: number, slabIndex: number, perSlab: number) => void) => {
    const [leading = 1, ...rest] = variable.shape;
    const perSlab = rest.reduce((a, b) => a * b, 1);
    for (let index = 0; index < leading; index++) visit(slab(variable, index, perSlab), index, perSlab);
  };

  return {
    format: reader.version === "classic format" ? "netCDF-3 classic" : "netCDF-3 64-bit offset",
    variables,
    readNumbers(variable) {
      const out = new Float64Array(variable.shape.reduce((a, b) => a * b, 1));
      const size = ELEMENT_BYTES[variable.type];
      forEachSlab(variable, (start, index, perSlab) => {
        for (let i = 0; i < perSlab; i++) out[index * perSlab + i] = readNumber(variable.type, start + i * size);
      });
      return out;
    },
    readStrings(variable) {
      if (variable.type !== "char") throw new Error(`${variable.name} is not text`);
      const rows: string[] = [];
      const decoder = new TextDecoder();
      forEachSlab(variable, (start, _index, perSlab) => {
        rows.push(decoder.decode(bytes.subarray(start, start + perSlab)).replace(/[\0 ]+$/, ""));
      });
      return rows;
    },
    readFloat32(variable, into) {
      const size = ELEMENT_BYTES[variable.type];
      forEachSlab(variable, (start, index, perSlab) => {
        const base = index * perSlab;
        if (variable.type === "float") {
          for (let i = 0; i < perSlab; i++) into[base + i] = view.getFloat32(start + i * 4, false);
        } else {
          for (let i = 0; i < perSlab; i++) into[base + i] = readNumber(variable.type, start + i * size);
        }
      });
    },
  };
}
