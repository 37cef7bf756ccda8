// Direct chunk writes into an HDF5 file that h5wasm created.
//
// Hand-written because no maintained JS library does it: h5wasm 0.10.3 exposes neither HDF5's
// H5Dwrite_chunk nor more than one filter per dataset, and its zlib runs single-threaded in WASM
// (3.2 s per 290 MB step). So h5wasm writes the whole file (coordinates, attributes, dimension
// scales) with the big variable declared chunked, deflated, but with no chunk written; this module
// then appends chunks compressed elsewhere (worker threads, Node's native zlib), writes the v1 B-tree
// that indexes them, sets the variable's filter pipeline (e.g. shuffle + deflate) and points its
// layout message at the tree. Only the structures h5wasm writes by default are handled (superblock
// v2/v3, version-2 object headers, layout message v3 with a v1 B-tree, filter pipeline v2); anything
// else fails loudly. Format: "HDF5 File Format Specification Version 3.0" (The HDF Group).
import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";

const UNDEFINED_ADDRESS = 0xffffffffffffffffn;
/** Half the node rank of chunk B-trees ("Indexed storage internal node 1/2 rank"); HDF5's default, which h5wasm keeps. */
const CHUNK_BTREE_K = 32;

/** Jenkins lookup3 `hashlittle` with seed 0: the checksum of HDF5 metadata (H5_checksum_lookup3). */
export function lookup3(data: Uint8Array, seed = 0): number {
  let a = (0xdeadbeef + data.length + seed) >>> 0;
  let b = a;
  let c = a;
  const rot = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
  let i = 0;
  let length = data.length;
  const word = (at: number) => data[at] | (data[at + 1] << 8) | (data[at + 2] << 16) | (data[at + 3] << 24);
  while (length > 12) {
    a = (a + word(i)) >>> 0;
    b = (b + word(i + 4)) >>> 0;
    c = (c + word(i + 8)) >>> 0;
    a = (a - c) >>> 0; a ^= rot(c, 4); c = (c + b) >>> 0;
    b = (b - a) >>> 0; b ^= rot(a, 6); a = (a + c) >>> 0;
    c = (c - b) >>> 0; c ^= rot(b, 8); b = (b + a) >>> 0;
    a = (a - c) >>> 0; a ^= rot(c, 16); c = (c + b) >>> 0;
    b = (b - a) >>> 0; b ^= rot(a, 19); a = (a + c) >>> 0;
    c = (c - b) >>> 0; c ^= rot(b, 4); b = (b + a) >>> 0;
    i += 12;
    length -= 12;
  }
  if (length === 0) return c;
  const tail = new Uint8Array(12);
  tail.set(data.subarray(i, i + length));
  const tailWord = (at: number) => (tail[at] | (tail[at + 1] << 8) | (tail[at + 2] << 16) | (tail[at + 3] << 24)) >>> 0;
  a = (a + tailWord(0)) >>> 0;
  b = (b + tailWord(4)) >>> 0;
  c = (c + tailWord(8)) >>> 0;
  c ^= b; c = (c - rot(b, 14)) >>> 0;
  a ^= c; a = (a - rot(c, 11)) >>> 0;
  b ^= a; b = (b - rot(a, 25)) >>> 0;
  c ^= b; c = (c - rot(b, 16)) >>> 0;
  a ^= c; a = (a - rot(c, 4)) >>> 0;
  b ^= a; b = (b - rot(a, 14)) >>> 0;
  c ^= b; c = (c - rot(b, 24)) >>> 0;
  return c;
}

/** One filter of a pipeline; HDF5's predefined ids: 1 deflate, 2 shuffle. */
export interface ChunkFilter {
  id: number;
  /** Client data (cd_values), e.g. [level] for deflate, [element size] for shuffle. */
  values: number[];
}

export interface ChunkedVariable {
  /** Dataset name in the root group. */
  name: string;
  /** Chunks (filtered by `filters`) in row-major chunk order: the data is split along the leading axes only. */
  chunks: Uint8Array[];
  /** The pipeline the chunks went through; none: raw chunks, and the variable loses its pipeline message. */
  filters: ChunkFilter[];
}

class FileView {
  constructor(readonly fd: number) {}
  read(address: bigint | number, length: number): Buffer {
    const buffer = Buffer.alloc(length);
    const got = readSync(this.fd, buffer, 0, length, Number(address));
    if (got !== length) throw new Error(`HDF5 file ends at ${Number(address) + got}, expected ${length} bytes at ${address}`);
    return buffer;
  }
  write(address: bigint | number, bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done, Number(address) + done);
  }
}

interface Superblock {
  eofAt: number;
  eof: bigint;
  root: bigint;
}

function readSuperblock(file: FileView): Superblock {
  const head = file.read(0, 48);
  if (head.toString("latin1", 0, 8) !== "\x89HDF\r\n\x1a\n") throw new Error("not an HDF5 file (no signature at 0)");
  const version = head[8];
  if (version !== 2 && version !== 3) throw new Error(`HDF5 superblock version ${version}; only 2 and 3 are supported`);
  if (head[9] !== 8 || head[10] !== 8) throw new Error("HDF5 offsets/lengths are not 8 bytes");
  return { eofAt: 28, eof: head.readBigUInt64LE(28), root: head.readBigUInt64LE(36) };
}

function writeSuperblockEof(file: FileView, eof: bigint): void {
  const head = file.read(0, 48);
  head.writeBigUInt64LE(eof, 28);
  head.writeUInt32LE(lookup3(head.subarray(0, 44)), 44);
  file.write(0, head);
}

/** A message inside a version-2 object header: where its data lies and in which header chunk. */
interface HeaderMessage {
  type: number;
  dataAt: number;
  size: number;
  /** Where this message's size field is (2 bytes). */
  sizeAt: number;
  chunk: HeaderChunk;
}
interface HeaderChunk {
  /** Start of the checksummed bytes (the signature) and of the checksum. */
  start: number;
  checksumAt: number;
}

function readObjectHeader(file: FileView, address: bigint): { messages: HeaderMessage[]; creationOrder: boolean } {
  const prefix = file.read(address, 6);
  if (prefix.toString("latin1", 0, 4) !== "OHDR" || prefix[4] !== 2) throw new Error(`no version-2 object header at ${address}`);
  const flags = prefix[5];
  let at = Number(address) + 6 + (flags & 0x20 ? 16 : 0) + (flags & 0x10 ? 4 : 0);
  const sizeBytes = 1 << (flags & 3);
  const sizeField = file.read(at, sizeBytes);
  const chunk0Size = Number(sizeBytes === 8 ? sizeField.readBigUInt64LE(0) : sizeField.readUIntLE(0, sizeBytes));
  at += sizeBytes;
  const creationOrder = (flags & 0x04) !== 0;
  const messages: HeaderMessage[] = [];
  const pending: Array<{ from: number; to: number; chunk: HeaderChunk }> = [{ from: at, to: at + chunk0Size, chunk: { start: Number(address), checksumAt: at + chunk0Size } }];
  while (pending.length > 0) {
    const { from, to, chunk } = pending.shift()!;
    const bytes = file.read(from, to - from);
    let p = 0;
    const headerSize = creationOrder ? 6 : 4;
    while (p + headerSize <= bytes.length) {
      const type = bytes[p];
      const size = bytes.readUInt16LE(p + 1);
      const message: HeaderMessage = { type, size, sizeAt: from + p + 1, dataAt: from + p + headerSize, chunk };
      messages.push(message);
      if (type === 0x10) {
        const continuation = bytes.subarray(p + headerSize, p + headerSize + 16);
        const start = Number(continuation.readBigUInt64LE(0));
        const length = Number(continuation.readBigUInt64LE(8));
        const signature = file.read(start, 4).toString("latin1");
        if (signature !== "OCHK") throw new Error(`object header continuation at ${start} has no OCHK signature`);
        pending.push({ from: start + 4, to: start + length - 4, chunk: { start, checksumAt: start + length - 4 } });
      }
      p += headerSize + size;
    }
  }
  return { messages, creationOrder };
}

function rewriteChecksum(file: FileView, chunk: HeaderChunk): void {
  const bytes = file.read(chunk.start, chunk.checksumAt - chunk.start);
  const sum = Buffer.alloc(4);
  sum.writeUInt32LE(lookup3(bytes));
  file.write(chunk.checksumAt, sum);
}

/** The object header address of a hard link `name` in the group at `group` (compact link storage). */
function findLink(file: FileView, group: bigint, name: string): bigint {
  for (const message of readObjectHeader(file, group).messages) {
    if (message.type !== 0x06) continue;
    const data = file.read(message.dataAt, message.size);
    const flags = data[1];
    let p = 2;
    const linkType = flags & 0x08 ? data[p++] : 0;
    if (flags & 0x04) p += 8;
    if (flags & 0x10) p += 1;
    const lengthBytes = 1 << (flags & 3);
    const nameLength = Number(lengthBytes === 8 ? data.readBigUInt64LE(p) : data.readUIntLE(p, lengthBytes));
    p += lengthBytes;
    const linkName = data.toString("utf8", p, p + nameLength);
    p += nameLength;
    if (linkName === name && linkType === 0) return data.readBigUInt64LE(p);
  }
  throw new Error(`HDF5 root group has no compact hard link '${name}'`);
}

/** Filter pipeline message, version 2 (predefined filters carry no name). */
function encodePipeline(filters: ChunkFilter[]): Buffer {
  const parts = [Buffer.from([2, filters.length])];
  for (const filter of filters) {
    if (filter.id >= 256) throw new Error(`filter ${filter.id}: only predefined filters (id < 256) are supported`);
    const entry = Buffer.alloc(6 + 4 * filter.values.length);
    entry.writeUInt16LE(filter.id, 0);
    entry.writeUInt16LE(0, 2); // flags: mandatory
    entry.writeUInt16LE(filter.values.length, 4);
    filter.values.forEach((value, i) => entry.writeUInt32LE(value, 6 + 4 * i));
    parts.push(entry);
  }
  return Buffer.concat(parts);
}

/** Room that `declareChunkedVariable` must reserve: h5wasm's single-filter message with this many deflate values. */
export function reservedDeflateValues(filters: ChunkFilter[]): number {
  const needed = encodePipeline(filters).length + 6 + 8; // + a NULL message (header with creation order, 8 bytes of data) for the rest
  return Math.max(1, Math.ceil((needed - 8) / 4));
}

/**
 * Writes the chunks of `variable` into `path` (written and closed by h5wasm, the variable created
 * chunked with a one-filter pipeline of `reservedDeflateValues` values and no chunk written), then
 * its chunk index, filter pipeline and layout, and the new end of file. Returns the file size.
 */
export function writeChunksInto(path: string, variable: ChunkedVariable, chunkDims: number[], elementSize: number): number {
  const fd = openSync(path, "r+");
  try {
    const file = new FileView(fd);
    const superblock = readSuperblock(file);
    if (BigInt(fstatSync(fd).size) !== superblock.eof) throw new Error(`HDF5 file ${path}: size differs from the superblock's end of file`);
    const header = readObjectHeader(file, findLink(file, superblock.root, variable.name));
    const pipeline = header.messages.find((m) => m.type === 0x0b);
    const layout = header.messages.find((m) => m.type === 0x08);
    if (!pipeline || !layout) throw new Error(`HDF5 variable '${variable.name}' has no filter pipeline or no layout message`);

    const layoutData = file.read(layout.dataAt, layout.size);
    if (layoutData[0] !== 3 || layoutData[1] !== 2) throw new Error(`'${variable.name}': layout message is not version 3 chunked`);
    const rank = layoutData[2] - 1;
    const declared = Array.from({ length: rank }, (_, axis) => layoutData.readUInt32LE(11 + 4 * axis));
    if (declared.join(",") !== chunkDims.join(",")) throw new Error(`'${variable.name}': chunks ${declared.join("×")} declared, ${chunkDims.join("×")} given`);
    if (layoutData.readBigUInt64LE(3) !== UNDEFINED_ADDRESS) throw new Error(`'${variable.name}' already has chunks written`);

    // Chunk data, contiguous after the metadata, in chunk order (so the bytes are deterministic).
    let at = superblock.eof;
    const addresses: bigint[] = [];
    for (const chunk of variable.chunks) {
      addresses.push(at);
      file.write(at, chunk);
      at += BigInt(chunk.length);
    }
    const chunkOffsets = leadingChunkOffsets(variable.chunks.length, chunkDims, declaredShape(header, file, rank));
    const { root, bytes, end } = chunkBtree(at, variable.chunks, addresses, chunkOffsets, chunkDims, elementSize);
    file.write(at, bytes);

    if (variable.filters.length === 0) {
      // Unfiltered chunks: the reserved pipeline message becomes a NULL message (type 0, flags 0) of the same size.
      file.write(pipeline.sizeAt - 1, Buffer.from([0]));
      file.write(pipeline.sizeAt + 2, Buffer.from([0]));
      file.write(pipeline.dataAt, Buffer.alloc(pipeline.size));
    } else {
      // Pipeline: the new one, then a NULL message over what is left of the reserved room.
      const encoded = encodePipeline(variable.filters);
      const headerSize = header.creationOrder ? 6 : 4;
      const rest = pipeline.size - encoded.length;
      if (rest !== 0 && rest < headerSize) throw new Error(`'${variable.name}': reserved filter pipeline room ${pipeline.size} does not fit ${encoded.length} + a NULL message`);
      const sizeField = Buffer.alloc(2);
      sizeField.writeUInt16LE(encoded.length);
      file.write(pipeline.sizeAt, sizeField);
      const replacement = Buffer.alloc(pipeline.size);
      encoded.copy(replacement);
      if (rest > 0) replacement.writeUInt16LE(rest - headerSize, encoded.length + 1); // type 0 (NULL), flags 0, creation order 0
      file.write(pipeline.dataAt, replacement);
    }

    const address = Buffer.alloc(8);
    address.writeBigUInt64LE(root);
    file.write(layout.dataAt + 3, address);
    for (const chunk of new Set([pipeline.chunk, layout.chunk])) rewriteChecksum(file, chunk);
    writeSuperblockEof(file, end);
    return Number(end);
  } finally {
    closeSync(fd);
  }
}

/** The variable's current dimensions, from its dataspace message. */
function declaredShape(header: { messages: HeaderMessage[] }, file: FileView, rank: number): number[] {
  const space = header.messages.find((m) => m.type === 0x01);
  if (!space) throw new Error("HDF5 variable has no dataspace message");
  const data = file.read(space.dataAt, space.size);
  if (data[0] !== 2 || data[1] !== rank) throw new Error(`dataspace message version ${data[0]}, rank ${data[1]}; expected version 2, rank ${rank}`);
  return Array.from({ length: rank }, (_, axis) => Number(data.readBigUInt64LE(4 + 8 * axis)));
}

/** Element offsets of each chunk when the chunks are whole trailing fields, in row-major order. */
function leadingChunkOffsets(count: number, chunkDims: number[], shape: number[]): number[][] {
  const grid = shape.map((size, axis) => Math.ceil(size / chunkDims[axis]));
  if (grid.reduce((a, b) => a * b, 1) !== count) throw new Error(`${count} chunks given; the variable (${shape.join("×")}) has ${grid.reduce((a, b) => a * b, 1)}`);
  return Array.from({ length: count }, (_, index) => {
    const offsets = new Array<number>(shape.length);
    let rest = index;
    for (let axis = shape.length - 1; axis >= 0; axis--) {
      offsets[axis] = (rest % grid[axis]) * chunkDims[axis];
      rest = Math.floor(rest / grid[axis]);
    }
    return offsets;
  });
}

/**
 * A version-1 B-tree of chunks (node type 1) starting at `base`: leaves of at most 2K entries and
 * one root above them when needed. Each key is (chunk size, filter mask, element offsets…, 0); a
 * node's last key is the bound after its last chunk, as HDF5 writes it. Nodes take their full size.
 */
function chunkBtree(base: bigint, chunks: Uint8Array[], addresses: bigint[], offsets: number[][], chunkDims: number[], elementSize: number) {
  const rank = chunkDims.length;
  const keySize = 8 + 8 * (rank + 1);
  const capacity = 2 * CHUNK_BTREE_K;
  const nodeSize = 24 + (capacity + 1) * keySize + capacity * 8;
  type Key = { size: number; offsets: number[] };
  const keyOf = (i: number): Key => ({ size: chunks[i].length, offsets: [...offsets[i], 0] });
  const last = chunks.length - 1;
  const bound: Key = { size: 0, offsets: [...offsets[last].map((o, axis) => o + chunkDims[axis]), elementSize] };
  const leafCount = Math.ceil(chunks.length / capacity);
  if (leafCount > capacity) throw new Error(`${chunks.length} chunks: more than one B-tree level above the leaves is not supported`);
  const perLeaf = Math.ceil(chunks.length / leafCount);
  const nodes: Array<{ level: number; entries: Array<{ key: Key; child: bigint }>; right: Key }> = [];
  for (let leaf = 0; leaf < leafCount; leaf++) {
    const from = leaf * perLeaf;
    const to = Math.min(chunks.length, from + perLeaf);
    const entries = [];
    for (let i = from; i < to; i++) entries.push({ key: keyOf(i), child: addresses[i] });
    nodes.push({ level: 0, entries, right: to < chunks.length ? keyOf(to) : bound });
  }
  const nodeAddress = (index: number) => base + BigInt(index * nodeSize);
  if (leafCount > 1) nodes.push({ level: 1, entries: nodes.map((leaf, i) => ({ key: leaf.entries[0].key, child: nodeAddress(i) })), right: bound });
  const bytes = Buffer.alloc(nodes.length * nodeSize);
  nodes.forEach((node, index) => {
    let p = index * nodeSize;
    bytes.write("TREE", p, "latin1");
    bytes[p + 4] = 1;
    bytes[p + 5] = node.level;
    bytes.writeUInt16LE(node.entries.length, p + 6);
    const sibling = (other: number) => (node.level === 0 && other >= 0 && other < leafCount ? nodeAddress(other) : UNDEFINED_ADDRESS);
    bytes.writeBigUInt64LE(sibling(index - 1), p + 8);
    bytes.writeBigUInt64LE(sibling(index + 1), p + 16);
    p += 24;
    const writeKey = (key: Key) => {
      bytes.writeUInt32LE(key.size, p);
      bytes.writeUInt32LE(0, p + 4); // filter mask: every filter applied
      key.offsets.forEach((o, axis) => bytes.writeBigUInt64LE(BigInt(o), p + 8 + 8 * axis));
      p += keySize;
    };
    for (const entry of node.entries) {
      writeKey(entry.key);
      bytes.writeBigUInt64LE(entry.child, p);
      p += 8;
    }
    writeKey(node.right);
  });
  const root = leafCount > 1 ? nodeAddress(nodes.length - 1) : nodeAddress(0);
  return { root, bytes, end: base + BigInt(bytes.length) };
}
