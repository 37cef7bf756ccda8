/**
 * The whole stack on loopback: s3rver as the data bucket; the bucket notification (filter and event
 * shape as AWS applies them) sending to the operational run queue; SQS emulated (tools/local-sqs.ts:
 * SQS cannot run here) with the event source mappings polling it and invoking the real dispatcher
 * in-process; and the local transform runner (with an optional account quota) starting the real runtime.
 */
import { createWriteStream, mkdirSync, WriteStream } from "node:fs";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { CreateEndpointCommand, CreateEndpointConfigCommand, SageMakerClient } from "@aws-sdk/client-sagemaker";
import { asyncFailuresKey, asyncResultsKey, formatS3Uri } from "../runtime/src/contract";
import { ASYNC_VARIANT_NAME } from "../components/asyncEndpoint";
import { startAsyncEndpointRunner, type AsyncEndpointRunner, type AsyncInvocationRecord } from "./async-endpoint-runner";
import { createDispatcherHandler, type DispatchResult, type RunOutcome, type SqsEvent } from "../trigger/handler";
import { createTriggerLogger } from "../trigger/log";
import { startLocalS3, type LocalS3 } from "../tools/local-s3";
import { startLocalSqs, type LocalSqs } from "../tools/local-sqs";
import { REDRIVE_MAX_RECEIVE_COUNT } from "../components/runQueues";
import { eventSourceMapping, type EventSourceMapping } from "./event-source-mapping";
import { shapeS3Event, type S3Event } from "./s3-event";
import { runtimeProcessLauncher } from "./runtime-process";
import { runtimeContainerLauncher } from "./runtime-container";
import { localModelEnvironment, localTriggerEnvironment, type LocalStack } from "./stack-settings";
import { startTransformRunner, type ContainerLauncher, type TransformJobRecord, type TransformRunner } from "./transform-runner";

/** How often the emulated event source mappings look for visible messages. */
const POLL_MS = 200;

export interface LocalStackOptions {
  stack: LocalStack;
  workDir: string;
  modelDir: string;
  providers: ("cuda" | "cpu")[];
  /** Run the runtime in this image (`docker run <image> serve`) instead of a Node child process. */
  containerImage?: { id: string; tag: string };
  /** Replaces the runtime child process (tests of the wiring only). */
  launch?: ContainerLauncher;
  onRuntimeLog?: (record: Record<string, unknown>) => void;
  onJobUpdate?: (job: TransformJobRecord) => void;
  /** The local account's transform-instance quota (ResourceLimitExceeded beyond it). */
  quota?: number;
  /** Extra dispatcher environment (tests: shorter waits). */
  triggerEnv?: Record<string, string>;
  /**
   * serving.mode "async": the dispatcher invokes a local async endpoint (local/async-endpoint-runner.ts)
   * created as components/asyncEndpoint.ts configures it; an idle instance stops after idleMs.
   */
  asyncServing?: { idleMs: number; onInvocationUpdate?: (invocation: AsyncInvocationRecord) => void };
}

export interface LocalQueueNames {
  operational: string;
  backfill: string;
  deadLetter: string;
}

export interface LocalStackHandle {
  s3: LocalS3;
  sqs: LocalSqs;
  queues: LocalQueueNames;
  queueUrls: LocalQueueNames;
  runner: TransformRunner;
  /** serving.mode "async": the local endpoint and its name. */
  asyncEndpoint?: { runner: AsyncEndpointRunner; name: string };
  s3DataDir: string;
  logDir: string;
  /** Every dispatcher invocation's result, in order. */
  dispatches(): DispatchResult[];
  /** Sends an S3 event to the operational queue as the bucket notification does (to replay a redelivery). */
  notify(event: S3Event): void;
  /** Every S3 event sent to the operational queue, in order. */
  notifications(): S3Event[];
  /** Resolves when no run-queue message is visible or in flight. */
  settled(timeoutMs?: number): Promise<void>;
  /** Uploads the input file, then the `_SUCCESS` marker; resolves with the marker's first decision. */
  uploadRun(runId: string, inputName: string, inputBytes: Uint8Array): Promise<RunOutcome[]>;
  /** Outcomes for a run so far. */
  outcomes(runId: string): RunOutcome[];
  stop(): Promise<void>;
}

export async function startLocalStackOnLoopback(options: LocalStackOptions): Promise<LocalStackHandle> {
  const { stack } = options;
  const s3DataDir = join(options.workDir, "s3");
  const logDir = join(options.workDir, "logs");
  mkdirSync(s3DataDir, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const s3 = await startLocalS3({ buckets: [stack.bucket], directory: s3DataDir });
  const sqs = await startLocalSqs({ region: stack.config.region });
  const prefix = stack.config.transform.jobNamePrefix;
  const queues: LocalQueueNames = { operational: `${prefix}-runs`, backfill: `${prefix}-backfill`, deadLetter: `${prefix}-runs-dlq` };
  const visibilityTimeoutSeconds = 6 * stack.config.lambda.timeoutSeconds;
  sqs.model.createQueue({ name: queues.deadLetter });
  for (const name of [queues.operational, queues.backfill]) sqs.model.createQueue({ name, visibilityTimeoutSeconds, deadLetter: { queue: queues.deadLetter, maxReceiveCount: REDRIVE_MAX_RECEIVE_COUNT } });
  const queueUrls: LocalQueueNames = { operational: sqs.queueUrl(queues.operational), backfill: sqs.queueUrl(queues.backfill), deadLetter: sqs.queueUrl(queues.deadLetter) };

  const logs: WriteStream[] = [];
  const logStream = (name: string) => {
    const stream = createWriteStream(join(logDir, name), { flags: "a" });
    logs.push(stream);
    return stream;
  };

  const runtimeLog = { hostEnv: s3.env, logFile: join(logDir, "runtime.log"), onLogRecord: options.onRuntimeLog };
  const image = options.containerImage;
  const runner = await startTransformRunner({
    s3: s3.client,
    region: stack.config.region,
    quota: options.quota,
    models: { [stack.modelName]: { image: image ? `${image.tag} (${image.id})` : "fuxi-runtime (local: tsx runtime/src/main.ts serve)", environment: localModelEnvironment(stack, options.modelDir, options.providers) } },
    launch: options.launch ?? (image ? runtimeContainerLauncher({ ...runtimeLog, image: image.id, port: "free" }) : runtimeProcessLauncher(runtimeLog)),
    onJobUpdate: options.onJobUpdate,
  });

  let asyncEndpoint: LocalStackHandle["asyncEndpoint"];
  if (options.asyncServing) {
    const name = `${prefix}-async`;
    const endpointRunner = await startAsyncEndpointRunner({
      s3: s3.client,
      region: stack.config.region,
      models: { [stack.modelName]: { image: "fuxi-runtime (local: tsx runtime/src/main.ts serve)", environment: localModelEnvironment(stack, options.modelDir, options.providers) } },
      launch: options.launch ?? (image ? runtimeContainerLauncher({ ...runtimeLog, image: image.id, port: "free" }) : runtimeProcessLauncher(runtimeLog)),
      idleMs: options.asyncServing.idleMs,
      maxInstances: stack.config.serving.maxInstances,
      onInvocationUpdate: options.asyncServing.onInvocationUpdate,
    });
    // What `pulumi up` creates (components/asyncEndpoint.ts), through the real control-plane client.
    const control = new SageMakerClient({ region: stack.config.region, credentials: { accessKeyId: s3.env.AWS_ACCESS_KEY_ID!, secretAccessKey: s3.env.AWS_SECRET_ACCESS_KEY! }, endpoint: endpointRunner.endpoint });
    const out = stack.config.prefixes.output;
    await control.send(new CreateEndpointConfigCommand({
      EndpointConfigName: `${name}-config`,
      // Zero instances: the endpoint as it is between cycles, scaled in (the stack creates it with one).
      ProductionVariants: [{ VariantName: ASYNC_VARIANT_NAME, ModelName: stack.modelName, InstanceType: stack.config.transform.instanceType as never, InitialInstanceCount: 0 }],
      AsyncInferenceConfig: {
        ClientConfig: { MaxConcurrentInvocationsPerInstance: 1 },
        OutputConfig: { S3OutputPath: formatS3Uri({ bucket: stack.bucket, key: asyncResultsKey(out) }), S3FailurePath: formatS3Uri({ bucket: stack.bucket, key: asyncFailuresKey(out) }) },
      },
    }));
    await control.send(new CreateEndpointCommand({ EndpointName: name, EndpointConfigName: `${name}-config` }));
    control.destroy();
    asyncEndpoint = { runner: endpointRunner, name };
  }

  // The handler reads its configuration and the SDK its endpoints from process.env, as in Lambda.
  const savedEnv = { ...process.env };
  Object.assign(process.env, s3.env, localTriggerEnvironment(stack, queueUrls, asyncEndpoint?.name), options.triggerEnv ?? {}, {
    ...(asyncEndpoint ? { AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: asyncEndpoint.runner.endpoint } : {}),
    AWS_ENDPOINT_URL_SAGEMAKER: runner.endpoint,
    AWS_ENDPOINT_URL_SQS: sqs.endpoint,
    AWS_REGION: stack.config.region,
  });
  const handle = createDispatcherHandler({ logger: createTriggerLogger(logStream("trigger.log")) });
  const results: DispatchResult[] = [];
  const byRun = new Map<string, RunOutcome[]>();
  const waiters: Array<() => void> = [];
  const recorded = async (event: SqsEvent, context: { awsRequestId: string }) => {
    const result = await handle(event, context);
    results.push(result);
    for (const m of result.messages) for (const o of m.outcomes) if (o.runId) byRun.set(o.runId, [...(byRun.get(o.runId) ?? []), o]);
    for (const wake of waiters.splice(0)) wake();
    return result;
  };
  const mappings: EventSourceMapping[] = [queues.operational, queues.backfill].map((name) =>
    eventSourceMapping({ model: sqs.model, queue: name, queueArn: sqs.queueArn(name), region: stack.config.region, handler: recorded, maximumConcurrency: 2 }),
  );
  let stopped = false;
  let polling: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    polling = polling.then(async () => {
      if (!stopped) await Promise.all(mappings.map((m) => m.drain()));
    });
  }, POLL_MS);

  const notified: S3Event[] = [];
  const notify = (event: S3Event) => {
    notified.push(event);
    sqs.model.send(queues.operational, JSON.stringify(event));
  };
  s3.onObjectCreated((record) => {
    const event = shapeS3Event(record, { region: stack.config.region, bucket: stack.bucket, rule: stack.rule });
    if (event) notify(event);
  });
  const inQueues = () => sqs.model.peek(queues.operational).length + sqs.model.peek(queues.backfill).length;
  const settled = async (timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    while (inQueues() > 0) {
      if (Date.now() > deadline) throw new Error(`run queues still hold ${inQueues()} message(s) after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    await polling;
  };

  return {
    s3,
    sqs,
    queues,
    queueUrls,
    runner,
    asyncEndpoint,
    s3DataDir,
    logDir,
    dispatches: () => [...results],
    notify,
    notifications: () => [...notified],
    settled,
    outcomes: (runId) => [...(byRun.get(runId) ?? [])],
    async uploadRun(runId, inputName, inputBytes) {
      const folder = `${stack.config.prefixes.input}${runId}/`;
      const before = byRun.get(runId)?.length ?? 0;
      await s3.client.send(new PutObjectCommand({ Bucket: stack.bucket, Key: `${folder}${inputName}`, Body: inputBytes, ContentType: "application/x-netcdf" }));
      await s3.client.send(new PutObjectCommand({ Bucket: stack.bucket, Key: `${folder}_SUCCESS`, Body: new Uint8Array(0), ContentLength: 0 }));
      while ((byRun.get(runId)?.length ?? 0) === before) await new Promise<void>((resolve) => waiters.push(resolve));
      return byRun.get(runId)!.slice(before);
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await polling;
      await runner.stop();
      await asyncEndpoint?.runner.stop();
      await sqs.stop();
      await s3.stop();
      for (const stream of logs) await new Promise<void>((resolve) => stream.end(() => resolve()));
      for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
      Object.assign(process.env, savedEnv);
    },
  };
}
