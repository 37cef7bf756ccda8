import type { H5 } from "./h5";
import type { AttributeValue, SourceFile, SourceType, SourceVariable } from "./source";

type H5File = InstanceType<H5["File"]>;
type H5Dataset = InstanceType<H5["Dataset"]>;
type H5Metadata = H5Dataset["metadata"];

/** netCDF-C marks dimensions that have no coordinate variable with this NAME on the dimension scale. */
const DIM_WITHOUT_VARIABLE = "This is a netCDF dimension but not a netCDF variable";

const H5T_INTEGER = 0;
const H5T_FLOAT = 1;
const H5T_STRING = 3;

function sourceType(meta: H5Metadata): SourceType {
  if (meta.type === H5T_FLOAT) return meta.size === 4 ? "float" : meta.size === 8 ? "double" : "other";
  if (meta.type === H5T_INTEGER) {
    const names: Record<number, [SourceType, SourceType]> = { 1: ["byte", "ubyte"], 2: ["short", "ushort"], 4: ["int", "uint"], 8: ["int64", "uint64"] };
    const pair = names[meta.size];
    return pair ? pair[meta.signed ? 0 : 1] : "other";
  }
  if (meta.type === H5T_STRING) return !meta.vlen && meta.size === 1 ? "char" : "string";
  return "other";
}

function attributeValue(value: unknown): AttributeValue | undefined {
  if (typeof value === "string" || typeof value === "number" || typeof value === "bigint") return value;
  if (ArrayBuffer.isView(value)) {
    const list = Array.from(value as unknown as ArrayLike<number | bigint>);
    return list.length === 1 ? list[0] : list;
  }
  if (Array.isArray(value) && value.every((v) => typeof v === "string" || typeof v === "number" || typeof v === "bigint")) {
    return value.length === 1 ? (value[0] as string | number | bigint) : (value as (string | number | bigint)[]);
  }
  return undefined;
}

/** Reads the netCDF view of an HDF5 file: root-group datasets, dimensions from attached dimension scales. */
export function h5Source(h5: H5, file: H5File): SourceFile {
  const module = h5.Module;
  const datasets = new Map<string, H5Dataset>();
  for (const name of file.keys()) {
    const entity = file.get(name);
    if (entity instanceof h5.Dataset) datasets.set(name, entity);
  }

  const attrNames = (dataset: H5Dataset) => new Set(module.get_attribute_names(dataset.file_id, dataset.path));
  const readAttr = (dataset: H5Dataset, names: Set<string>, name: string) =>
    names.has(name) ? attributeValue(dataset.get_attribute(name, false)) : undefined;

  // netCDF-C records dimension ids: `_Netcdf4Dimid` on each dimension scale, `_Netcdf4Coordinates` on
  // multi-dimensional coordinate variables (which carry no DIMENSION_LIST), e.g. level(level, nchar).
  const dimNameById = new Map<number, string>();
  for (const [name, dataset] of datasets) {
    const names = attrNames(dataset);
    const id = readAttr(dataset, names, "_Netcdf4Dimid");
    if (names.has("CLASS") && typeof id === "number") dimNameById.set(id, name);
  }

  const variables: SourceVariable[] = [];
  const datasetByVariable = new Map<string, H5Dataset>();
  for (const [name, dataset] of datasets) {
    const names = attrNames(dataset);
    const scaleName = readAttr(dataset, names, "NAME");
    if (typeof scaleName === "string" && scaleName.startsWith(DIM_WITHOUT_VARIABLE)) continue;
    const meta = dataset.metadata;
    const shape = meta.shape ?? [];
    const coordinates = readAttr(dataset, names, "_Netcdf4Coordinates");
    const coordinateIds = typeof coordinates === "number" ? [coordinates] : Array.isArray(coordinates) ? coordinates.map(Number) : [];
    const dims = shape.map((_, axis) => {
      const scales = names.has("DIMENSION_LIST") ? dataset.get_attached_scales(axis) : [];
      if (scales.length > 0) return scales[0].replace(/^\//, "");
      const byId = coordinateIds.length === shape.length ? dimNameById.get(coordinateIds[axis]) : undefined;
      if (byId !== undefined) return byId;
      // A 1-D dimension scale is its own dimension.
      if (names.has("CLASS") && axis === 0) return name;
      return `<unnamed dimension ${axis} of ${name}>`;
    });
    // netCDF-C stores a non-coordinate variable that shares a dimension's name under this prefix.
    const variableName = name.replace(/^_nc4_non_coord_/, "");
    datasetByVariable.set(variableName, dataset);
    variables.push({
      name: variableName,
      dims,
      shape,
      type: sourceType(meta),
      attr: (attrName) => readAttr(dataset, names, attrName),
    });
  }
  const datasetOf = (variable: SourceVariable) => {
    const dataset = datasetByVariable.get(variable.name);
    if (!dataset) throw new Error(`no dataset ${variable.name}`);
    return dataset;
  };

  return {
    format: "netCDF-4/HDF5",
    variables,
    readNumbers(variable) {
      const value = datasetOf(variable).value;
      if (!ArrayBuffer.isView(value)) throw new Error(`${variable.name} is not numeric`);
      return Float64Array.from(value as unknown as ArrayLike<number | bigint>, Number);
    },
    readStrings(variable) {
      const value = datasetOf(variable).value;
      if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) throw new Error(`${variable.name} is not text`);
      const strings = value as string[];
      if (variable.type !== "char" || variable.shape.length !== 2) return strings.map((s) => s.replace(/[\0 ]+$/, ""));
      const width = variable.shape[1];
      return Array.from({ length: variable.shape[0] }, (_, row) => strings.slice(row * width, (row + 1) * width).join("").replace(/[\0 ]+$/, ""));
    },
    readFloat32(variable, into) {
      const dataset = datasetOf(variable);
      const [leading, ...rest] = variable.shape;
      const frame = rest.reduce((a, b) => a * b, 1);
      const elementBytes = variable.type === "double" ? 8 : 4;
      if (variable.type !== "float" && variable.type !== "double") throw new Error(`${variable.name} is not float or double`);
      // One leading index per read keeps the WASM heap at one frame, not the whole (up to 1.2 GB) array,
      // and reading into our own heap buffer skips the extra copy Dataset.slice makes.
      const pointer = module._malloc(frame * elementBytes);
      if (pointer === 0) throw new Error(`cannot allocate ${frame * elementBytes} bytes in the WASM heap for ${variable.name}`);
      try {
        const count = [1n, ...rest.map(BigInt)];
        const stride = count.map(() => 1n);
        for (let index = 0; index < leading; index++) {
          const offset = [BigInt(index), ...rest.map(() => 0n)];
          const status = module.get_dataset_data(dataset.file_id, dataset.path, count, offset, stride, BigInt(pointer));
          if (status < 0) throw new Error(`reading ${variable.name}[${index}] failed`);
          const Heap = elementBytes === 8 ? Float64Array : Float32Array;
          into.set(new Heap(module.HEAPU8.buffer as ArrayBuffer, pointer, frame), index * frame);
        }
      } finally {
        module._free(pointer);
      }
    },
  };
}
