// A cheap structural check of an .onnx file without loading its weights: the top level must parse as
// an ONNX ModelProto (protobuf) with an ir_version and a graph. Used at start-up for the stages that
// are loaded later in the run, so /ping is healthy only when they can plausibly load. Only tags and
// lengths are read (payloads are skipped), so it costs a few reads whatever the file's size.
// Kept minimal and separate on purpose: the ONNX graph-signature reader of issue #14 (inputs,
// outputs, shapes) supersedes it when it lands.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

const GRAPH_FIELD = 7;
const IR_VERSION_FIELD = 1;

export function checkOnnxHeader(path: string): void {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const buffer = Buffer.alloc(10);
    let at = 0;
    const varint = (): number => {
      let value = 0;
      let scale = 1;
      for (let i = 0; i < 10; i++) {
        if (readSync(fd, buffer, 0, 1, at) !== 1) throw new Error(`truncated at byte ${at}`);
        at++;
        value += (buffer[0] & 0x7f) * scale;
        if ((buffer[0] & 0x80) === 0) return value;
        scale *= 128;
      }
      throw new Error(`bad varint at byte ${at}`);
    };
    const seen = new Set<number>();
    while (at < size) {
      const tag = varint();
      const field = Math.floor(tag / 8);
      const wireType = tag % 8;
      if (field === 0) throw new Error(`field number 0 at byte ${at}`);
      if (wireType === 0) varint();
      else if (wireType === 1) at += 8;
      else if (wireType === 5) at += 4;
      else if (wireType === 2) {
        const length = varint(); // (not `at += varint()`: varint moves `at` itself)
        at += length;
      }
      else throw new Error(`wire type ${wireType} at byte ${at}`);
      if (at > size) throw new Error(`field ${field} runs past the end of the file (${size} bytes)`);
      seen.add(field);
    }
    if (!seen.has(IR_VERSION_FIELD) || !seen.has(GRAPH_FIELD)) throw new Error("no ir_version or no graph");
  } catch (error) {
    throw new Error(`${path} is not an ONNX model: ${(error as Error).message}`);
  } finally {
    closeSync(fd);
  }
}
