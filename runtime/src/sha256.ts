// SHA-256 of a local file, streamed (model files, step files).
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

/** SHA-256 (hex) of the file at `path`. */
export function sha256OfFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")));
  });
}
