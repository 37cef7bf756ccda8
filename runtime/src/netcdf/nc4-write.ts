import { type H5, withH5Writer } from "./h5";

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

/**
 * Writes a netCDF-4 file: every coordinate is an HDF5 dimension scale whose dataset name is the
 * dimension name (netCDF's coordinate-variable convention), `_Netcdf4Dimid` fixes the dimension
 * order, and data variables have their dimension scales attached in order. Byte-deterministic.
 */
export function writeNetcdf4(h5: H5, spec: NcFile): Uint8Array {
  const dimIds = new Map(spec.coordinates.map((c, i) => [c.name, i]));
  for (const variable of spec.variables) {
    for (const dim of variable.dims) {
      if (!dimIds.has(dim)) throw new Error(`variable ${variable.name}: dimension ${dim} has no coordinate`);
    }
  }
  return withH5Writer(h5, (file) => {
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
      const dataset = file.create_dataset({
        name: variable.name,
        data: variable.data,
        shape,
        chunks: variable.chunks ?? null,
        ...(variable.deflateLevel !== undefined ? { compression: "gzip" as const, compression_opts: variable.deflateLevel } : {}),
        track_order: true,
      });
      variable.dims.forEach((dim, axis) => dataset.attach_scale(axis, `/${dim}`));
      writeAttributes(dataset, variable.attrs);
    }
    writeAttributes(file, spec.attrs);
  });
}

function sizeOf(spec: NcFile, dim: string): number {
  const coordinate = spec.coordinates.find((c) => c.name === dim);
  if (!coordinate) throw new Error(`dimension ${dim} has no coordinate`);
  return coordinate.values.length;
}
