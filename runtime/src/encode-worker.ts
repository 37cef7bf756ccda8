// Worker thread compressing (lat, lon) fields of a step for the codec worker: bitround (optional),
// shuffle, deflate with Node's native zlib. Reads the frame in place (shared memory).
import { serveRpc } from "./worker-rpc";
import { encodeField, type FieldEncoding } from "./netcdf/chunk-codec";

const scratch = {};

serveRpc({
  async encodeFields(args: { data: Float32Array; cells: number; first: number; encodings: FieldEncoding[] }) {
    const chunks = args.encodings.map((encoding, i) => {
      const field = args.first + i;
      return new Uint8Array(encodeField(args.data.subarray(field * args.cells, (field + 1) * args.cells), encoding, scratch));
    });
    return { result: chunks, transfer: chunks.map((c) => c.buffer as ArrayBuffer) };
  },
});
