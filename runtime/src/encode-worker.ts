// Worker thread compressing (lat, lon) fields of a step for the codec worker: bitround (optional),
// shuffle, deflate with Node's native zlib. `data` holds the batch's fields (a view of shared memory, or a copy).
import { serveRpc } from "./worker-rpc";
import { encodeField, type FieldEncoding } from "./netcdf/chunk-codec";

const scratch = {};

serveRpc({
  async encodeFields(args: { data: Float32Array; cells: number; encodings: FieldEncoding[] }) {
    const chunks = args.encodings.map((encoding, field) => {
      return new Uint8Array(encodeField(args.data.subarray(field * args.cells, (field + 1) * args.cells), encoding, scratch));
    });
    return { result: chunks, transfer: chunks.map((c) => c.buffer as ArrayBuffer) };
  },
});
