import { type H5, withH5Writer, writeH5File } from "./h5";

/** Attribute values as netCDF sees them: text (NC_CHAR), double, or explicitly typed numbers. */
export type NcAttribute = string | number | Float64Array | Float32Array | Int32Array | BigInt64Array;
export type NcAttributes = Record<string, NcAttribute>;

/** A dimension together with its coordinate variable (netCDF-4 stores both as one HDF5 dimension scale). */
export interface NcCoordinate {
  name: string;
  values: Float64Array | Float32Array | Int32Array | BigInt64Array | string[];
  attrs?: NcAttributes;
}

export interface NcVariable {
  name: string;
  dims: string[];
  data: Float32Array | Float64Array | Int16Array;
  attrs?: NcAttributes;
  /** Chunk shape; with `deflateLevel` the variable is compressed (HDF5 needs chunks for filters). */
  chunks?: number[];
  deflateLevel?: number;
  /**
   * Declared only: the variable is created chunked with a one-filter pipeline reserving this many
   * filter values and no chunk written; `data` is ignored. `hdf5-chunks.ts` writes the chunks later.
   */
  chunksWrittenLater?: { reservedFilterValues: number };
}

export interface NcFile {
  coordinates: NcCoordinate[];
  variables: NcVariable[];
  attrs?: NcAttributes;
}

type H5Object = { create_attribute: InstanceType<H5["Group"]>["create_attribute"] };

function writeAttributes(target: H5Object, attrs: NcAttributes | undefined): void {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (typeof value === "string") {
      // Fixed-length, NUL-terminated ASCII: netCDF-C reads it as a text (NC_CHAR) attribute, like CF expects.
      const size = Math.max(1, Buffer.byteLength(value, "utf8"));
      target.create_attribute(name, value, null, `A${size}`);
    } else if (typeof value === "number") {
      target.create_attribute(name, Float64Array.of(value), [1]);
    } else {
      target.create_attribute(name, value, [value.length]);
    }
  }
}

type H5File = InstanceType<H5["File"]>;

/**
 * Writes a netCDF-4 file to `path`: every coordinate is an HDF5 dimension scale whose dataset name is
 * the dimension name (netCDF's coordinate-variable convention), `_Netcdf4Dimid` fixes the dimension
 * order, and data variables have their dimension scales attached in order. Byte-deterministic.
 */
export function writeNetcdf4File(h5: H5, path: string, spec: NcFile): void {
  checkSpec(spec);
  writeH5File(h5, path, (file) => writeSpec(file, spec));
}

/** writeNetcdf4File into a scratch file, returning its bytes (small files: tests, tools). */
export function writeNetcdf4(h5: H5, spec: NcFile): Uint8Array {
  checkSpec(spec);
  return withH5Writer(h5, (file) => writeSpec(file, spec));
}

function checkSpec(spec: NcFile): void {
  const dimIds = new Set(spec.coordinates.map((c) => c.name));
  for (const variable of spec.variables) {
    for (const dim of variable.dims) {
      if (!dimIds.has(dim)) throw new Error(`variable ${variable.name}: dimension ${dim} has no coordinate`);
    }
    const shape = variable.dims.map((dim) => sizeOf(spec, dim));
    const elements = shape.reduce((a, b) => a * b, 1);
    if (variable.chunksWrittenLater) {
      if (!variable.chunks || leadingUnitAxes(variable.chunks, shape) === 0) throw new Error(`variable ${variable.name}: chunks written later must be whole trailing fields`);
    } else if (variable.data.length !== elements) {
      throw new Error(`variable ${variable.name}: ${variable.data.length} values; shape ${shape.join("×")} does not match number of elements`);
    }
  }
}

function writeSpec(file: H5File, spec: NcFile): void {
  for (const [dimId, coordinate] of spec.coordinates.entries()) {
    const { name, values } = coordinate;
    const dataset = Array.isArray(values)
      ? file.create_dataset({ name, data: values, shape: [values.length], dtype: "A", track_order: true })
      : file.create_dataset({ name, data: values, shape: [values.length], track_order: true });
    dataset.make_scale(name);
    dataset.create_attribute("_Netcdf4Dimid", Int32Array.of(dimId), [1]);
    writeAttributes(dataset, coordinate.attrs);
  }
  for (const variable of spec.variables) {
    const shape = variable.dims.map((dim) => sizeOf(spec, dim));
    const dataset = writeVariableData(file, variable, shape);
    variable.dims.forEach((dim, axis) => dataset.attach_scale(axis, `/${dim}`));
    writeAttributes(dataset, variable.attrs);
  }
  writeAttributes(file, spec.attrs);
}

/**
 * h5wasm copies whatever it writes into the WASM heap, and that heap never shrinks. A chunked variable
 * whose chunks are whole trailing fields ([1, …, 1, n, m]) is therefore written one chunk at a time:
 * created with its first chunk, extended to its full shape, then filled slice by slice. A 290 MB
 * forecast step then needs 4 MB of heap instead of 290 MB. Other variables are written in one go.
 */
function writeVariableData(file: H5File, variable: NcVariable, shape: number[]) {
  const compression = variable.deflateLevel !== undefined ? { compression: "gzip" as const, compression_opts: variable.deflateLevel } : {};
  const chunks = variable.chunks;
  const fieldAxes = chunks ? leadingUnitAxes(chunks, shape) : 0;
  if (variable.chunksWrittenLater && chunks) {
    // An empty first extent (nothing written, so no chunk allocated), then the full shape.
    const empty = shape.map((size, axis) => (axis === fieldAxes - 1 ? 0 : size));
    const dataset = file.create_dataset({
      name: variable.name,
      data: new Float32Array(0),
      shape: empty,
      maxshape: shape,
      chunks,
      compression: 1,
      compression_opts: new Array<number>(variable.chunksWrittenLater.reservedFilterValues).fill(0),
      track_order: true,
    });
    dataset.resize(shape);
    return dataset;
  }
  if (!chunks || fieldAxes === 0) {
    return file.create_dataset({ name: variable.name, data: variable.data, shape, chunks: chunks ?? null, ...compression, track_order: true });
  }
  const fieldSize = shape.slice(fieldAxes).reduce((a, b) => a * b, 1);
  const fields = variable.data.length / fieldSize;
  const dataset = file.create_dataset({
    name: variable.name,
    data: variable.data.subarray(0, fieldSize),
    shape: chunks,
    maxshape: shape,
    chunks,
    ...compression,
    track_order: true,
  });
  dataset.resize(shape);
  for (let field = 1; field < fields; field++) {
    // Row-major index of this field over the leading axes.
    let rest = field;
    const start = new Array<number>(fieldAxes);
    for (let axis = fieldAxes - 1; axis >= 0; axis--) {
      start[axis] = rest % shape[axis];
      rest = Math.floor(rest / shape[axis]);
    }
    const ranges = shape.map((_, axis): [] | [number, number] => (axis < fieldAxes ? [start[axis], start[axis] + 1] : []));
    dataset.write_slice(ranges, variable.data.subarray(field * fieldSize, (field + 1) * fieldSize));
  }
  return dataset;
}

/** k when chunks are [1 × k, whole trailing axes] with k > 0 (the data splits into whole-chunk fields); else 0. */
function leadingUnitAxes(chunks: number[], shape: number[]): number {
  if (chunks.length !== shape.length) return 0;
  let k = shape.length;
  while (k > 0 && chunks[k - 1] === shape[k - 1]) k--;
  for (let axis = 0; axis < k; axis++) if (chunks[axis] !== 1) return 0;
  return k;
}

function sizeOf(spec: NcFile, dim: string): number {
  const coordinate = spec.coordinates.find((c) => c.name === dim);
  if (!coordinate) throw new Error(`dimension ${dim} has no coordinate`);
  return coordinate.values.length;
}
