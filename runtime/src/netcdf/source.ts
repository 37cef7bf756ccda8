/** Element types the input reader distinguishes (netCDF names where they exist). */
export type SourceType = "float" | "double" | "byte" | "ubyte" | "short" | "ushort" | "int" | "uint" | "int64" | "uint64" | "string" | "char" | "other";

export type AttributeValue = string | number | bigint | readonly (number | bigint | string)[];

export interface SourceVariable {
  name: string;
  dims: string[];
  shape: number[];
  type: SourceType;
  attr(name: string): AttributeValue | undefined;
}

/** The part of a netCDF file (3 or 4) the FuXi input reader needs, independent of the on-disk format. */
export interface SourceFile {
  format: string;
  variables: SourceVariable[];
  /** A 1-D numeric variable as doubles. */
  readNumbers(variable: SourceVariable): Float64Array;
  /** A 1-D string variable, or a 2-D char variable read row by row (trailing NULs and spaces removed). */
  readStrings(variable: SourceVariable): string[];
  /** A float or double variable into `into` (same element count), leading index by leading index. */
  readFloat32(variable: SourceVariable, into: Float32Array): void;
}

export function attrText(value: AttributeValue | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string") return value;
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value.join("");
  return undefined;
}

export function attrNumber(value: AttributeValue | undefined): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value) && value.length === 1 && typeof value[0] !== "string") return Number(value[0]);
  return undefined;
}
