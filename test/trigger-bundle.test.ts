import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { bundleTriggerHandler } from "../trigger/bundle";
import { handler } from "../trigger/handler";
import { startLocalS3, type LocalS3 } from "../tools/local-s3";
import { startLocalSqs, type LocalSqs } from "../tools/local-sqs";
import { BUCKET, eventOf, markerRecord, OPERATIONAL_QUEUE_ARN, sqsEventOf, TEST_ENV } from "./trigger-fixtures";
import { repoPathIn } from "./support/repo-paths";

const run = promisify(execFile);

/**
 * SageMaker's CreateTransformJob over its real wire protocol (awsJson1_1) on loopback, to prove that the
 * clients honour AWS_ENDPOINT_URL_SAGEMAKER. Names are unique, as in SageMaker.
 */
async function startFakeSageMaker(): Promise<{ endpoint: string; calls: Array<{ target: string; body: Record<string, unknown> }>; server: Server }> {
  const calls: Array<{ target: string; body: Record<string, unknown> }> = [];
  const names = new Set<string>();
  const readBody = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
  };
  const server = createServer((req, res) => {
    void readBody(req).then((body) => {
      const target = String(req.headers["x-amz-target"]);
      calls.push({ target, body });
      const reply = (status: number, payload: unknown, errorType?: string) => {
        res.writeHead(status, { "content-type": "application/x-amz-json-1.1", ...(errorType ? { "x-amzn-errortype": errorType } : {}) });
        res.end(JSON.stringify(payload));
      };
      if (target === "SageMaker.ListTransformJobs") return reply(200, { TransformJobSummaries: [] });
      if (target === "SageMaker.DescribeTransformJob") {
        if (!names.has(String(body.TransformJobName))) return reply(400, { __type: "ResourceNotFound", message: `Could not find requested job with name ${body.TransformJobName}` }, "ResourceNotFound");
        return reply(200, { TransformJobName: body.TransformJobName, TransformJobStatus: "InProgress" });
      }
      if (target !== "SageMaker.CreateTransformJob") return reply(400, { __type: "UnknownOperationException", message: target }, "UnknownOperationException");
      const name = String(body.TransformJobName);
      if (names.has(name)) {
        return reply(400, { __type: "ValidationException", message: "Job name must be unique within an AWS account and region, and a job with this name already exists" }, "ValidationException");
      }
      names.add(name);
      reply(200, { TransformJobArn: `arn:aws-cn:sagemaker:cn-northwest-1:123456789012:transform-job/${name}` });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls, server };
}

describe("trigger bundle (esbuild) and endpoint variables", function () {
  this.timeout(60_000);
  let s3: LocalS3;
  let sqs: LocalSqs;
  let sageMaker: Awaited<ReturnType<typeof startFakeSageMaker>>;
  let bundle: { code: string; sizeBytes: number };
  let workDir: string;
  before(async () => {
    [s3, sageMaker, bundle] = await Promise.all([startLocalS3({ buckets: [BUCKET] }), startFakeSageMaker(), bundleTriggerHandler()]);
    sqs = await startLocalSqs();
    for (const name of ["fuxi-test-runs", "fuxi-test-backfill", "fuxi-test-runs-dlq"]) sqs.model.createQueue({ name });
    workDir = mkdtempSync(join(tmpdir(), "fuxi-trigger-bundle-"));
    writeFileSync(join(workDir, "index.js"), bundle.code);
  });
  after(async () => {
    await s3.stop();
    await sqs.stop();
    await new Promise((resolve) => sageMaker.server.close(resolve));
    rmSync(workDir, { recursive: true, force: true });
  });

  async function userUploads(runId: string): Promise<void> {
    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `input/${runId}/fuxi_input.nc`, Body: "netcdf" }));
    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `input/${runId}/_SUCCESS`, Body: "" }));
  }
  const endpointEnv = () => ({
    ...s3.env,
    AWS_ENDPOINT_URL_SAGEMAKER: sageMaker.endpoint,
    AWS_ENDPOINT_URL_SQS: sqs.endpoint,
    OPERATIONAL_QUEUE_URL: sqs.queueUrl("fuxi-test-runs"),
    BACKFILL_QUEUE_URL: sqs.queueUrl("fuxi-test-backfill"),
    DEAD_LETTER_QUEUE_URL: sqs.queueUrl("fuxi-test-runs-dlq"),
  });
  /** A message as the event source mapping hands it over, received from the local queue (real receipt handle). */
  const received = (event: unknown) => {
    sqs.model.send("fuxi-test-runs", JSON.stringify(event));
    const [m] = sqs.model.receive("fuxi-test-runs", 1);
    const e = sqsEventOf(m.body, { queueArn: OPERATIONAL_QUEUE_ARN });
    e.Records[0].receiptHandle = m.receiptHandle!;
    return e;
  };

  it("is a deterministic, self-contained CommonJS file under 1 MB", async () => {
    const again = await bundleTriggerHandler();
    assert.equal(again.code, bundle.code, "same sources, same bytes");
    assert.equal(bundle.sizeBytes, Buffer.byteLength(bundle.code));
    assert.ok(bundle.sizeBytes <= 1_000_000, `${bundle.sizeBytes} bytes`);
    assert.equal(repoPathIn(bundle.code), undefined, "no absolute paths of this machine");
    // Only node built-ins stay outside, plus the optional CRT signer the SDK loads inside try/catch
    // for SigV4a (multi-region access points, not used here).
    const external = new Set([...bundle.code.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]));
    const nonBuiltin = [...external].filter((name) => !builtinModules.includes(name.replace(/^node:/, "")));
    assert.deepEqual(nonBuiltin, ["@aws-sdk/signature-v4-crt"], "SDK clients are bundled, not taken from the Lambda runtime");
  });

  it("runs as a Lambda would load it, in a fresh node process, against S3 and SageMaker endpoints from the environment", async () => {
    await userUploads("bundled");
    const s3Event = eventOf(markerRecord("input/bundled/_SUCCESS", { versionId: "v1" }));
    const invoke = async () => {
      const event = received(s3Event);
      const script = `require(${JSON.stringify(join(workDir, "index.js"))}).handler(JSON.parse(process.env.EVENT), { awsRequestId: "r" })
        .then((result) => console.log("RESULT " + JSON.stringify(result)), (error) => { console.log("ERROR " + error.message); process.exitCode = 1; });`;
      const { stdout } = await run(process.execPath, ["-e", script], {
        env: { PATH: process.env.PATH, ...TEST_ENV, ...endpointEnv(), EVENT: JSON.stringify(event) },
      });
      const lines = stdout.trim().split("\n");
      const result = lines.find((l) => l.startsWith("RESULT "));
      assert.ok(result, stdout);
      return { result: JSON.parse(result.slice("RESULT ".length)) as { messages: Array<{ outcomes: Array<{ decision: string; jobName: string }> }> }, logs: lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>) };
    };
    const first = await invoke();
    assert.equal(first.result.messages[0].outcomes[0].decision, "started");
    assert.deepEqual(first.logs.filter((l) => l.decision === "started").map((l) => [l.decision, l.service, l.awsRequestId]), [["started", "fuxi-trigger", "r"]]);
    const jobName = first.result.messages[0].outcomes[0].jobName;
    const creates = () => sageMaker.calls.filter((c) => c.target === "SageMaker.CreateTransformJob");
    assert.equal(creates().length, 1);
    assert.equal(creates()[0].body.TransformJobName, jobName);
    assert.deepEqual(creates()[0].body.TransformOutput, { S3OutputPath: `s3://${BUCKET}/output/bundled/_transform/`, Accept: "application/json", AssembleWith: "None" });
    const request = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `requests/${jobName}.json` }));
    assert.equal(JSON.parse(await request.Body!.transformToString()).jobName, jobName);

    const second = await invoke();
    // Its admission ticket is fresh, so the second delivery creates again by name: SageMaker's
    // ValidationException over the wire counts as "already exists".
    assert.equal(second.result.messages[0].outcomes[0].decision, "duplicate");
    assert.equal(creates().length, 2);
    assert.equal(creates()[1].body.TransformJobName, jobName);
  });

  it("the exported handler picks up endpoint variables set after it was imported", async () => {
    await userUploads("inprocess");
    const saved = { ...process.env };
    Object.assign(process.env, TEST_ENV, endpointEnv());
    const before = sageMaker.calls.filter((c) => c.target === "SageMaker.CreateTransformJob").length;
    try {
      const { messages } = await handler(received(eventOf(markerRecord("input/inprocess/_SUCCESS"))));
      assert.equal(messages[0].outcomes[0].decision, "started");
      assert.equal(sageMaker.calls.filter((c) => c.target === "SageMaker.CreateTransformJob").length, before + 1);
    } finally {
      process.env = saved;
    }
  });
});
