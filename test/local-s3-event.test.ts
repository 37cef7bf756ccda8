import assert from "node:assert/strict";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { startLocalS3, S3rverEventRecord } from "../tools/local-s3";
import { eventTypeMatches, keyMatchesRule, NotificationRule, shapeS3Event } from "../local/s3-event";
import { decodeEventKey, encodeEventKey } from "../runtime/src/contract";

const rule: NotificationRule = { configurationId: "fuxi-input-marker", prefix: "input/", suffix: "_SUCCESS", events: ["s3:ObjectCreated:*"] };

function record(key: string, eventName = "ObjectCreated:Put", bucket = "data"): S3rverEventRecord {
  return { eventName, s3: { bucket: { name: bucket }, object: { key, size: 0, eTag: "d41d8cd98f00b204e9800998ecf8427e", sequencer: "18C3A0B5F1E" } } };
}

describe("local S3 event shaping (as AWS delivers notifications to Lambda)", () => {
  it("URL-encodes keys as S3 does: + for space, / kept, reserved characters escaped", () => {
    assert.equal(encodeEventKey("input/2023101206/_SUCCESS"), "input/2023101206/_SUCCESS");
    assert.equal(encodeEventKey("input/my run/a+b=c (1).nc"), "input/my+run/a%2Bb%3Dc+%281%29.nc");
    assert.equal(encodeEventKey("input/été/x:y*z~"), "input/%C3%A9t%C3%A9/x%3Ay*z%7E");
    for (const key of ["input/my run/a+b=c (1).nc", "input/été/ü ß/%41", "a/b/'!~*"]) assert.equal(decodeEventKey(encodeEventKey(key)), key);
  });

  it("applies the rule's prefix, suffix and event types to the unencoded key", () => {
    assert.equal(keyMatchesRule("input/2023101206/_SUCCESS", rule), true);
    assert.equal(keyMatchesRule("output/2023101206/_SUCCESS", rule), false);
    assert.equal(keyMatchesRule("input/2023101206/fuxi_input.nc", rule), false);
    assert.equal(keyMatchesRule("Input/2023101206/_SUCCESS", rule), false, "filters are case-sensitive");
    assert.equal(keyMatchesRule("anything", { prefix: "", suffix: "" }), true);
    assert.equal(eventTypeMatches(["s3:ObjectCreated:*"], "ObjectCreated:Put"), true);
    assert.equal(eventTypeMatches(["s3:ObjectCreated:*"], "ObjectCreated:CompleteMultipartUpload"), true);
    assert.equal(eventTypeMatches(["s3:ObjectCreated:*"], "ObjectRemoved:Delete"), false);
    assert.equal(eventTypeMatches(["s3:ObjectCreated:Put"], "ObjectCreated:Copy"), false);
  });

  it("shapes a matching record as an AWS S3 event in the China partition", () => {
    const now = new Date("2026-11-22T05:59:58.000Z");
    const event = shapeS3Event(record("input/run 1/_SUCCESS"), { region: "cn-northwest-1", bucket: "data", rule, now });
    assert.ok(event);
    assert.equal(event.Records.length, 1);
    const r = event.Records[0];
    assert.equal(r.eventVersion, "2.1");
    assert.equal(r.eventSource, "aws:s3");
    assert.equal(r.awsRegion, "cn-northwest-1");
    assert.equal(r.eventTime, "2026-11-22T05:59:58.000Z");
    assert.equal(r.eventName, "ObjectCreated:Put");
    assert.equal(r.s3.s3SchemaVersion, "1.0");
    assert.equal(r.s3.configurationId, "fuxi-input-marker");
    assert.deepEqual(r.s3.bucket.name, "data");
    assert.equal(r.s3.bucket.arn, "arn:aws-cn:s3:::data");
    assert.deepEqual(r.s3.object, { key: "input/run+1/_SUCCESS", size: 0, eTag: "d41d8cd98f00b204e9800998ecf8427e", sequencer: "18C3A0B5F1E" });
    assert.equal("versionId" in r.s3.object, false, "unversioned buckets send no versionId");
    assert.equal(shapeS3Event(record("x/_SUCCESS"), { region: "us-east-1", bucket: "data", rule: { ...rule, prefix: "" } })!.Records[0].s3.bucket.arn, "arn:aws:s3:::data");
  });

  it("drops records outside the rule, for other buckets and for deletions", () => {
    const options = { region: "cn-northwest-1", bucket: "data", rule };
    assert.equal(shapeS3Event(record("input/2023101206/fuxi_input.nc"), options), undefined);
    assert.equal(shapeS3Event(record("output/2023101206/_SUCCESS"), options), undefined);
    assert.equal(shapeS3Event(record("input/2023101206/_SUCCESS", "ObjectCreated:Put", "other"), options), undefined);
    assert.equal(shapeS3Event(record("input/2023101206/_SUCCESS", "ObjectRemoved:Delete"), options), undefined);
  });

  it("shapes the records s3rver really emits for uploads through the AWS SDK", async () => {
    const s3 = await startLocalS3({ buckets: ["data"] });
    try {
      const seen: S3rverEventRecord[] = [];
      s3.onObjectCreated((r) => seen.push(r));
      await s3.client.send(new PutObjectCommand({ Bucket: "data", Key: "input/a b/in.nc", Body: "x" }));
      await s3.client.send(new PutObjectCommand({ Bucket: "data", Key: "input/a b/_SUCCESS", Body: "" }));
      const events = seen.map((r) => shapeS3Event(r, { region: "cn-northwest-1", bucket: "data", rule })).filter((e) => e !== undefined);
      assert.equal(seen.length, 2);
      assert.equal(events.length, 1);
      const object = events[0].Records[0].s3.object;
      assert.equal(object.key, "input/a+b/_SUCCESS");
      assert.equal(object.size, 0);
      assert.equal(object.eTag, "d41d8cd98f00b204e9800998ecf8427e");
      assert.match(object.sequencer, /^[0-9A-F]+$/);
    } finally {
      await s3.stop();
    }
  });
});
