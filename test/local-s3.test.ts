import assert from "node:assert/strict";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { startLocalS3, LocalS3, LOCAL_CREDENTIALS } from "../tools/local-s3";

describe("local S3 (s3rver on loopback)", () => {
  let s3: LocalS3;
  before(async () => { s3 = await startLocalS3({ buckets: ["fuxi-test"] }); });
  after(async () => { await s3.stop(); });

  it("stores and returns bytes exactly through the real AWS SDK", async () => {
    const body = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    await s3.client.send(new PutObjectCommand({ Bucket: "fuxi-test", Key: "a/b c/x.bin", Body: body }));
    const got = await s3.client.send(new GetObjectCommand({ Bucket: "fuxi-test", Key: "a/b c/x.bin" }));
    assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body);
  });

  it("is reachable by a client configured only from the environment variables it exports", async () => {
    const saved = { ...process.env };
    Object.assign(process.env, s3.env);
    try {
      const client = new S3Client({ forcePathStyle: process.env.S3_FORCE_PATH_STYLE === "true", credentials: LOCAL_CREDENTIALS });
      await client.send(new PutObjectCommand({ Bucket: "fuxi-test", Key: "env/ok.txt", Body: "ok" }));
      const got = await s3.client.send(new GetObjectCommand({ Bucket: "fuxi-test", Key: "env/ok.txt" }));
      assert.equal(await got.Body!.transformToString(), "ok");
      client.destroy();
    } finally {
      process.env = saved;
    }
  });
});
