import assert from "node:assert/strict";
import { createServer, IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { CreateTransformJobCommand, CreateTransformJobCommandInput, DescribeTransformJobCommand, SageMakerClient } from "@aws-sdk/client-sagemaker";
import { LOCAL_CREDENTIALS, LocalS3, startLocalS3 } from "../tools/local-s3";
import { ContainerLauncher, outputLocation, RunningContainer, startTransformRunner, TransformRunner } from "../local/transform-runner";

const BUCKET = "runner-test";

/**
 * A tiny fake model container: the only fake in these tests. It stands in for the runtime so
 * the runner's Batch Transform behaviour can be checked without ONNX models.
 */
interface FakeBehaviour {
  pingReadyAfter?: number;
  failInvocations?: number;
  invocationDelayMs?: number;
  exitImmediately?: boolean;
}
interface FakeLog {
  paths: string[];
  environments: Record<string, string>[];
  bodies: string[];
  contentTypes: string[];
}

function fakeLauncher(behaviour: FakeBehaviour, log: FakeLog): ContainerLauncher {
  return async ({ environment }) => {
    log.environments.push(environment);
    let pings = 0;
    let failuresLeft = behaviour.failInvocations ?? 0;
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      log.paths.push(`${req.method} ${req.url}`);
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (req.url === "/ping") {
          pings++;
          res.writeHead(pings > (behaviour.pingReadyAfter ?? 0) ? 200 : 503).end();
        } else if (req.url === "/execution-parameters") {
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ MaxConcurrentTransforms: 1, BatchStrategy: "SINGLE_RECORD", MaxPayloadInMB: 1 }));
        } else if (req.url === "/invocations") {
          const body = Buffer.concat(chunks).toString("utf8");
          log.bodies.push(body);
          log.contentTypes.push(String(req.headers["content-type"]));
          const answer = () => {
            if (failuresLeft > 0) {
              failuresLeft--;
              res.writeHead(500).end("model exploded");
            } else res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ echoed: JSON.parse(body) }));
          };
          if (behaviour.invocationDelayMs) setTimeout(answer, behaviour.invocationDelayMs);
          else answer();
        } else res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    let exit!: (reason: string) => void;
    const exited = new Promise<string>((resolve) => { exit = resolve; });
    if (behaviour.exitImmediately) exit("exit code 3");
    const container: RunningContainer = {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      exited,
      async stop() {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
    return container;
  };
}

function jobRequest(name: string, overrides: Partial<CreateTransformJobCommandInput> = {}): CreateTransformJobCommandInput {
  return {
    TransformJobName: name,
    ModelName: "fuxi-test-model",
    ModelClientConfig: { InvocationsTimeoutInSeconds: 30, InvocationsMaxRetries: 0 },
    MaxPayloadInMB: 1,
    BatchStrategy: "SingleRecord",
    Environment: { JOB_VAR: "job" },
    TransformInput: { DataSource: { S3DataSource: { S3DataType: "S3Prefix", S3Uri: `s3://${BUCKET}/requests/${name}.json` } }, ContentType: "application/json", SplitType: "None" },
    TransformOutput: { S3OutputPath: `s3://${BUCKET}/output/run/_transform/`, AssembleWith: "None" },
    TransformResources: { InstanceType: "ml.g4dn.xlarge", InstanceCount: 1 },
    ...overrides,
  };
}

describe("local transform runner (SageMaker wire protocol + Batch Transform behaviour)", function () {
  let s3: LocalS3;
  let runner: TransformRunner;
  let sagemaker: SageMakerClient;
  const behaviour: FakeBehaviour = {};
  let log: FakeLog;

  before(async () => {
    s3 = await startLocalS3({ buckets: [BUCKET] });
    runner = await startTransformRunner({
      s3: s3.client,
      models: { "fuxi-test-model": { image: "local/fuxi:test", environment: { MODEL_VAR: "model", JOB_VAR: "model-loses" } } },
      launch: (request) => fakeLauncher(behaviour, log)(request),
      pingTimeoutMs: 1500,
      pingIntervalMs: 50,
    });
    sagemaker = new SageMakerClient({ endpoint: runner.endpoint, region: "cn-northwest-1", credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
  });
  beforeEach(() => {
    for (const key of Object.keys(behaviour)) delete behaviour[key as keyof FakeBehaviour];
    log = { paths: [], environments: [], bodies: [], contentTypes: [] };
  });
  after(async () => {
    sagemaker.destroy();
    await runner.stop();
    await s3.stop();
  });

  async function putRequest(name: string, body: object) {
    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `requests/${name}.json`, Body: JSON.stringify(body) }));
  }

  async function describeUntilDone(name: string) {
    for (let i = 0; i < 200; i++) {
      const job = await sagemaker.send(new DescribeTransformJobCommand({ TransformJobName: name }));
      if (job.TransformJobStatus !== "InProgress") return job;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`${name} never finished`);
  }

  it("runs a job as Batch Transform does and reports it through DescribeTransformJob", async () => {
    behaviour.pingReadyAfter = 2;
    await putRequest("job-ok", { hello: "world" });
    const created = await sagemaker.send(new CreateTransformJobCommand(jobRequest("job-ok")));
    assert.equal(created.TransformJobArn, "arn:aws-cn:sagemaker:cn-northwest-1:000000000000:transform-job/job-ok");
    const job = await describeUntilDone("job-ok");
    assert.equal(job.TransformJobStatus, "Completed", job.FailureReason);
    assert.ok(job.CreationTime instanceof Date && job.TransformEndTime instanceof Date);
    assert.ok(job.TransformEndTime.getTime() >= job.CreationTime.getTime());
    assert.deepEqual(job.ModelClientConfig, { InvocationsTimeoutInSeconds: 30, InvocationsMaxRetries: 0 });

    // Pinged until 200, asked for execution parameters, then exactly one invocation with the object's bytes.
    assert.deepEqual(log.paths, ["GET /ping", "GET /ping", "GET /ping", "GET /execution-parameters", "POST /invocations"]);
    assert.deepEqual(JSON.parse(log.bodies[0]), { hello: "world" });
    assert.equal(log.contentTypes[0], "application/json");
    const env = log.environments[0];
    assert.equal(env.SAGEMAKER_BATCH, "true");
    assert.equal(env.MODEL_VAR, "model");
    assert.equal(env.JOB_VAR, "job", "the job's Environment wins over the model's");
    assert.equal(env.SAGEMAKER_MAX_PAYLOAD_IN_MB, "1");
    assert.equal(env.SAGEMAKER_BATCH_STRATEGY, "SINGLE_RECORD");

    const out = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "output/run/_transform/job-ok.json.out" }));
    assert.deepEqual(JSON.parse(await out.Body!.transformToString()), { echoed: { hello: "world" } });
    assert.deepEqual(runner.jobs().find((j) => j.request.TransformJobName === "job-ok")!.outputs, [`s3://${BUCKET}/output/run/_transform/job-ok.json.out`]);
  });

  it("rejects a job name the API rejects, with the service's ValidationException", async () => {
    for (const bad of ["bad_name", "-starts-with-dash", "a".repeat(64), "ends-"]) {
      await assert.rejects(sagemaker.send(new CreateTransformJobCommand(jobRequest(bad))), (error: Error) => {
        assert.equal(error.name, "ValidationException", bad);
        assert.match(error.message, /at 'transformJobName' failed to satisfy constraint/);
        assert.equal((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 400);
        return true;
      });
    }
  });

  it("rejects more than 16 environment entries", async () => {
    const environment = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`VAR_${i}`, "x"]));
    await assert.rejects(sagemaker.send(new CreateTransformJobCommand(jobRequest("too-much-env", { Environment: environment }))), (error: Error) => {
      assert.equal(error.name, "ValidationException");
      assert.match(error.message, /at 'environment' failed to satisfy constraint: Member must have length less than or equal to 16/);
      return true;
    });
    const sixteen = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`VAR_${i}`, "x"]));
    await putRequest("sixteen-env", {});
    await sagemaker.send(new CreateTransformJobCommand(jobRequest("sixteen-env", { Environment: sixteen })));
    assert.equal((await describeUntilDone("sixteen-env")).TransformJobStatus, "Completed");
  });

  it("rejects out-of-range payload size and client config, and names every violation", async () => {
    const request = jobRequest("bad-ranges", { MaxPayloadInMB: 101, ModelClientConfig: { InvocationsTimeoutInSeconds: 3601, InvocationsMaxRetries: 4 } });
    await assert.rejects(sagemaker.send(new CreateTransformJobCommand(request)), (error: Error) => {
      assert.equal(error.name, "ValidationException");
      assert.match(error.message, /^3 validation errors detected: /);
      assert.match(error.message, /'maxPayloadInMB' .*less than or equal to 100/);
      assert.match(error.message, /'modelClientConfig.invocationsTimeoutInSeconds' .*less than or equal to 3600/);
      assert.match(error.message, /'modelClientConfig.invocationsMaxRetries' .*less than or equal to 3/);
      return true;
    });
    assert.equal(runner.jobs().some((j) => j.request.TransformJobName === "bad-ranges"), false);
  });

  it("rejects a second job with the same name with ResourceInUse", async () => {
    await putRequest("job-dup", {});
    await sagemaker.send(new CreateTransformJobCommand(jobRequest("job-dup")));
    await assert.rejects(sagemaker.send(new CreateTransformJobCommand(jobRequest("job-dup"))), (error: Error) => {
      assert.equal(error.name, "ResourceInUse");
      assert.equal(error.message, "Job name must be unique within an AWS account and region, and a job with this name already exists (arn:aws-cn:sagemaker:cn-northwest-1:000000000000:transform-job/job-dup)");
      return true;
    });
    await describeUntilDone("job-dup");
    assert.equal(log.environments.length, 1, "only one container was started");
  });

  it("rejects an unknown model and a missing required member", async () => {
    await assert.rejects(sagemaker.send(new CreateTransformJobCommand(jobRequest("no-model", { ModelName: "nope" }))), /Could not find model "arn:aws-cn:sagemaker:cn-northwest-1:000000000000:model\/nope"/);
    const { TransformResources: _omitted, ...withoutResources } = jobRequest("no-resources");
    await assert.rejects(sagemaker.send(new CreateTransformJobCommand(withoutResources as CreateTransformJobCommandInput)), /Value null at 'transformResources' failed to satisfy constraint: Member must not be null/);
  });

  it("answers DescribeTransformJob for an unknown job with ResourceNotFound", async () => {
    await assert.rejects(sagemaker.send(new DescribeTransformJobCommand({ TransformJobName: "never-created" })), (error: Error) => error.name === "ResourceNotFound");
  });

  it("retries failed invocations up to InvocationsMaxRetries", async () => {
    behaviour.failInvocations = 2;
    await putRequest("job-retry", { n: 1 });
    await sagemaker.send(new CreateTransformJobCommand(jobRequest("job-retry", { ModelClientConfig: { InvocationsTimeoutInSeconds: 30, InvocationsMaxRetries: 2 } })));
    assert.equal((await describeUntilDone("job-retry")).TransformJobStatus, "Completed");
    assert.equal(log.bodies.length, 3);
  });

  it("fails the job with the container's answer when retries run out", async () => {
    behaviour.failInvocations = 5;
    await putRequest("job-fail", {});
    await sagemaker.send(new CreateTransformJobCommand(jobRequest("job-fail", { ModelClientConfig: { InvocationsTimeoutInSeconds: 30, InvocationsMaxRetries: 1 } })));
    const job = await describeUntilDone("job-fail");
    assert.equal(job.TransformJobStatus, "Failed");
    assert.match(job.FailureReason!, /HTTP 500: model exploded \(after 2 attempt\(s\)\)/);
  });

  it("fails the job when an invocation outlives InvocationsTimeoutInSeconds", async () => {
    behaviour.invocationDelayMs = 3000;
    await putRequest("job-slow", {});
    await sagemaker.send(new CreateTransformJobCommand(jobRequest("job-slow", { ModelClientConfig: { InvocationsTimeoutInSeconds: 1, InvocationsMaxRetries: 0 } })));
    const job = await describeUntilDone("job-slow");
    assert.equal(job.TransformJobStatus, "Failed");
    assert.match(job.FailureReason!, /did not answer within InvocationsTimeoutInSeconds=1/);
  });

  it("fails the job when the container never becomes healthy or exits first", async () => {
    behaviour.pingReadyAfter = 1_000_000;
    await putRequest("job-unhealthy", {});
    await sagemaker.send(new CreateTransformJobCommand(jobRequest("job-unhealthy")));
    const unhealthy = await describeUntilDone("job-unhealthy");
    assert.equal(unhealthy.TransformJobStatus, "Failed");
    assert.match(unhealthy.FailureReason!, /did not answer \/ping with 200 within 2 s \(last: HTTP 503\)/);

    behaviour.exitImmediately = true;
    await putRequest("job-crash", {});
    await sagemaker.send(new CreateTransformJobCommand(jobRequest("job-crash")));
    const crashed = await describeUntilDone("job-crash");
    assert.match(crashed.FailureReason!, /exited before answering \/ping: exit code 3/);
  });

  it("fails the job when the input object is larger than MaxPayloadInMB", async () => {
    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "requests/job-big.json", Body: Buffer.alloc(1024 * 1024 + 1, 32) }));
    await sagemaker.send(new CreateTransformJobCommand(jobRequest("job-big")));
    const job = await describeUntilDone("job-big");
    assert.match(job.FailureReason!, /Too much data for max payload size/);
    assert.equal(log.bodies.length, 0);
  });

  it("places outputs as <S3OutputPath>/<path relative to the input URI>.out", () => {
    assert.deepEqual(outputLocation("s3://b/out/run/_transform", "requests/j.json", "requests/j.json"), { bucket: "b", key: "out/run/_transform/j.json.out" });
    assert.deepEqual(outputLocation("s3://b/out/", "requests/", "requests/a/b.json"), { bucket: "b", key: "out/a/b.json.out" });
    assert.deepEqual(outputLocation("s3://b", "x.json", "x.json"), { bucket: "b", key: "x.json.out" });
  });
});
