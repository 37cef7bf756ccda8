// The loopback async inference endpoint (local/async-endpoint-runner.ts) driving the REAL runtime
// server, reached with the real SDK clients (@aws-sdk/client-sagemaker, -runtime) over HTTP: what an
// async endpoint sends the container (the request object read from InputLocation, Content-Type, Accept,
// CustomAttributes), what it writes back (the manifest as <InferenceId>.out, failures as -error.out),
// one warm instance between invocations, scale to zero after idle, and a repeat that is cheap.
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { CreateEndpointCommand, CreateEndpointConfigCommand, DescribeEndpointCommand, SageMakerClient } from "@aws-sdk/client-sagemaker";
import { InvokeEndpointAsyncCommand, SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { startAsyncEndpointRunner, type AsyncEndpointRunner, type AsyncNotification } from "../local/async-endpoint-runner";
import { runtimeProcessLauncher } from "../local/runtime-process";
import { startLocalS3, LOCAL_CREDENTIALS, LOCAL_REGION, type LocalS3 } from "../tools/local-s3";
import { writeStandinModels } from "../tools/standin-model";
import { RUNTIME_LOG_EVENTS, type Manifest } from "../runtime/src/contract";
import { forecastRequest, TEST_LANES, TEST_LANES_ENV, tempDir, writeInputWithXarray } from "./support/runtime-harness";

const BUCKET = TEST_LANES.bucket;
const ENDPOINT = "fuxi-test-async";
const ALERTS = "arn:aws-cn:sns:cn-northwest-1:000000000000:alerts";
const COMPLETIONS = "arn:aws-cn:sns:cn-northwest-1:000000000000:completions";
const IDLE_MS = 1500;

describe("local async inference endpoint → real runtime", function () {
  this.timeout(300_000);
  const grid = { lat: 24, lon: 48 };
  let work: string;
  let s3: LocalS3;
  let runner: AsyncEndpointRunner;
  let control: SageMakerClient;
  let runtimeClient: SageMakerRuntimeClient;
  const events: Record<string, unknown>[] = [];
  const notifications: { topic: string; message: AsyncNotification }[] = [];
  const instanceEvents: string[] = [];

  async function getText(uri: string): Promise<string> {
    const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri)!;
    const object = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return object.Body!.transformToString();
  }
  async function putRequest(runId: string, steps: number[]): Promise<{ location: string; request: Record<string, unknown> }> {
    const request = forecastRequest(runId, steps);
    const key = `requests/${request.jobName}.json`;
    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: JSON.stringify(request), ContentType: "application/json" }));
    return { location: `s3://${BUCKET}/${key}`, request };
  }
  const invoke = (inputLocation: string, inferenceId: string, extra: Record<string, unknown> = {}) =>
    runtimeClient.send(new InvokeEndpointAsyncCommand({ EndpointName: ENDPOINT, InputLocation: inputLocation, InferenceId: inferenceId, ContentType: "application/json", Accept: "application/json", InvocationTimeoutSeconds: 600, ...extra }));
  const count = (event: string) => events.filter((e) => e.event === event).length;

  before(async () => {
    work = await tempDir("local-async");
    await writeStandinModels(join(work, "models"), grid);
    s3 = await startLocalS3({ buckets: [BUCKET] });
    const input = await writeInputWithXarray(join(work, "input.nc"), { ...grid, initTime: new Date("2023-10-12T06:00:00Z") });
    for (const runId of ["2023101206", "2023101212"]) await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `input/${runId}/fuxi_input.nc`, Body: input }));
    runner = await startAsyncEndpointRunner({
      s3: s3.client,
      models: { "fuxi-model": { image: "local", environment: { ...TEST_LANES_ENV, FUXI_MODEL_DIR: join(work, "models"), FUXI_PROVIDERS: "cpu", FUXI_ALLOW_CPU: "true" } } },
      launch: runtimeProcessLauncher({ hostEnv: s3.env, logFile: join(work, "runtime.log"), onLogRecord: (r) => events.push(r) }),
      idleMs: IDLE_MS,
      maxInstances: 1,
      onNotification: (topic, message) => notifications.push({ topic, message }),
      onInstanceEvent: (e) => instanceEvents.push(e.event),
    });
    const clientConfig = { region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, endpoint: runner.endpoint };
    control = new SageMakerClient(clientConfig);
    runtimeClient = new SageMakerRuntimeClient(clientConfig);
    await control.send(new CreateEndpointConfigCommand({
      EndpointConfigName: `${ENDPOINT}-config`,
      ProductionVariants: [{ VariantName: "forecast", ModelName: "fuxi-model", InstanceType: "ml.g5.2xlarge", InitialInstanceCount: 1 }],
      AsyncInferenceConfig: {
        ClientConfig: { MaxConcurrentInvocationsPerInstance: 1 },
        OutputConfig: { S3OutputPath: `s3://${BUCKET}/output/_async/results/`, S3FailurePath: `s3://${BUCKET}/output/_async/failures/`, NotificationConfig: { SuccessTopic: COMPLETIONS, ErrorTopic: ALERTS } },
      },
    }));
    await control.send(new CreateEndpointCommand({ EndpointName: ENDPOINT, EndpointConfigName: `${ENDPOINT}-config` }));
  });

  after(async () => {
    control?.destroy();
    runtimeClient?.destroy();
    await runner?.stop();
    await s3?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("comes InService once the runtime answers /ping", async () => {
    let status: string | undefined;
    for (let i = 0; i < 600 && status !== "InService"; i++) {
      status = (await control.send(new DescribeEndpointCommand({ EndpointName: ENDPOINT }))).EndpointStatus;
      if (status !== "InService") await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, "InService");
    assert.equal(count(RUNTIME_LOG_EVENTS.ready), 1);
  });

  it("serves the request object from InputLocation unchanged: the manifest lands at <InferenceId>.out", async () => {
    const { location } = await putRequest("2023101206", [2]);
    const answer = await invoke(location, "fuxi-test-2023101206-a1b2c3d4", { CustomAttributes: "trace=1" });
    assert.equal(answer.InferenceId, "fuxi-test-2023101206-a1b2c3d4");
    assert.equal(answer.OutputLocation, `s3://${BUCKET}/output/_async/results/fuxi-test-2023101206-a1b2c3d4.out`);
    assert.equal(answer.FailureLocation, `s3://${BUCKET}/output/_async/failures/fuxi-test-2023101206-a1b2c3d4-error.out`);
    const done = await runner.waitForInvocation(answer.InferenceId!);
    assert.equal(done.status, "Completed", done.failureReason);
    assert.equal(done.warm, true, "the initial instance was up and idle");
    const manifest = JSON.parse(await getText(answer.OutputLocation!)) as Manifest;
    const stored = JSON.parse(await getText(`s3://${BUCKET}/output/2023101206/_SUCCESS`)) as Manifest;
    assert.deepEqual(manifest, stored, "the response body is the run manifest the runtime wrote");
    assert.equal(manifest.files.length, 2);
    assert.equal(count(RUNTIME_LOG_EVENTS.stepDone), 2);
    const note = notifications.at(-1)!;
    assert.equal(note.topic, COMPLETIONS);
    assert.equal(note.message.invocationStatus, "Completed");
    assert.equal(note.message.responseParameters.outputLocation, answer.OutputLocation);
  });

  it("a repeat with the same inference id is queued again (SageMaker does not deduplicate) and costs no step", async () => {
    const { location } = await putRequest("2023101206", [2]);
    const steps = count(RUNTIME_LOG_EVENTS.stepDone);
    const answer = await invoke(location, "fuxi-test-2023101206-a1b2c3d4");
    const done = await runner.waitForInvocation(answer.InferenceId!);
    assert.equal(done.status, "Completed", done.failureReason);
    assert.equal(count(RUNTIME_LOG_EVENTS.stepDone), steps, "the runtime's idempotency answered from the manifest");
    assert.equal(count(RUNTIME_LOG_EVENTS.runAlreadyComplete), 1);
    assert.equal(runner.invocations().filter((i) => i.inferenceId === answer.InferenceId).length, 2);
  });

  it("scales to zero after the idle period, then starts from zero for the next request (cold), and stays warm for the one after", async () => {
    await new Promise((r) => setTimeout(r, IDLE_MS + 1500));
    assert.equal(runner.instanceCount(ENDPOINT), 0, "scaled in");
    assert.deepEqual(instanceEvents.slice(-1), ["stopped"]);

    const cold = await invoke((await putRequest("2023101212", [1])).location, "fuxi-test-2023101212-cold");
    const coldDone = await runner.waitForInvocation(cold.InferenceId!);
    assert.equal(coldDone.status, "Completed", coldDone.failureReason);
    assert.equal(coldDone.warm, false, "no instance was running: it waited for one to start and load the models");
    assert.equal(count(RUNTIME_LOG_EVENTS.ready), 2, "a second instance loaded the models");

    const warm = await invoke((await putRequest("2023101212", [2])).location, "fuxi-test-2023101212-warm");
    const warmDone = await runner.waitForInvocation(warm.InferenceId!);
    assert.equal(warmDone.status, "Completed", warmDone.failureReason);
    assert.equal(warmDone.warm, true);
    assert.equal(count(RUNTIME_LOG_EVENTS.ready), 2, "no model load for the warm request");
    const queued = (r: typeof coldDone) => r.startedAt!.getTime() - r.receivedAt.getTime();
    assert.ok(queued(warmDone) < queued(coldDone), `warm wait ${queued(warmDone)} ms < cold wait ${queued(coldDone)} ms`);
  });

  it("a request the runtime rejects goes to the failure path and the error topic, with the runtime's reason", async () => {
    const { location } = await putRequest("no-such-run", [1]);
    const answer = await invoke(location, "fuxi-test-bad");
    const done = await runner.waitForInvocation(answer.InferenceId!);
    assert.equal(done.status, "Failed");
    const body = JSON.parse(await getText(answer.FailureLocation!));
    assert.match(body.error, /no-such-run/);
    const note = notifications.at(-1)!;
    assert.equal(note.topic, ALERTS);
    assert.equal(note.message.invocationStatus, "Failed");
    assert.match(note.message.failureReason!, /Received server error \(4\d\d\)/);
  });

  it("rejects what the API rejects: an inference id over 64 characters, an unknown endpoint, a TTL below 60 s", async () => {
    const { location } = await putRequest("2023101206", [2]);
    await assert.rejects(invoke(location, "x".repeat(65)), (e: Error) => e.name === "ValidationError" && /inferenceId/.test(e.message));
    await assert.rejects(runtimeClient.send(new InvokeEndpointAsyncCommand({ EndpointName: "nope", InputLocation: location })), (e: Error) => e.name === "ValidationError" && /Endpoint nope of account/.test(e.message));
    await assert.rejects(invoke(location, "ttl", { RequestTTLSeconds: 30 }), (e: Error) => e.name === "ValidationError");
  });
});
