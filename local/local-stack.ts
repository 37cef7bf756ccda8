/**
 * The whole stack on loopback: s3rver as the data bucket, the bucket notification (filter and
 * event shape as AWS applies them) invoking the real trigger handler in-process with Lambda's
 * async-invocation retries, and the local transform runner that starts the real runtime.
 */
import { createWriteStream, mkdirSync, WriteStream } from "node:fs";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { createTriggerHandler, type RecordOutcome, type TriggerResult } from "../trigger/handler";
import { createTriggerLogger } from "../trigger/log";
import { startLocalS3, type LocalS3 } from "../tools/local-s3";
import { shapeS3Event, type S3Event } from "./s3-event";
import { runtimeProcessLauncher } from "./runtime-process";
import { runtimeContainerLauncher } from "./runtime-container";
import { localModelEnvironment, localTriggerEnvironment, type LocalStack } from "./stack-settings";
import { startTransformRunner, type ContainerLauncher, type TransformJobRecord, type TransformRunner } from "./transform-runner";

/** Lambda retries a failed asynchronous invocation twice. */
const LAMBDA_ASYNC_RETRIES = 2;

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
  /** Delay between Lambda's retries of a failed invocation (AWS: about 1 and 2 minutes). */
  lambdaRetryDelayMs?: number;
}

export interface Delivery {
  event: S3Event;
  /** Invocations made (1 + Lambda retries). */
  attempts: number;
  result?: TriggerResult;
  error?: string;
}

export interface LocalStackHandle {
  s3: LocalS3;
  runner: TransformRunner;
  s3DataDir: string;
  logDir: string;
  /** Every notification delivered to the trigger, in order. */
  deliveries(): Delivery[];
  /** Delivers an event to the trigger as Lambda would (used to replay an S3 redelivery). */
  deliver(event: S3Event): Promise<Delivery>;
  /** Resolves when every notification emitted so far has been handled. */
  settled(): Promise<void>;
  /** Uploads the input file, then the `_SUCCESS` marker, and waits for the trigger. */
  uploadRun(runId: string, inputName: string, inputBytes: Uint8Array): Promise<RecordOutcome[]>;
  stop(): Promise<void>;
}

export async function startLocalStackOnLoopback(options: LocalStackOptions): Promise<LocalStackHandle> {
  const { stack } = options;
  const s3DataDir = join(options.workDir, "s3");
  const logDir = join(options.workDir, "logs");
  mkdirSync(s3DataDir, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const s3 = await startLocalS3({ buckets: [stack.bucket], directory: s3DataDir });
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
    models: { [stack.modelName]: { image: image ? `${image.tag} (${image.id})` : "fuxi-runtime (local: tsx runtime/src/main.ts serve)", environment: localModelEnvironment(stack, options.modelDir, options.providers) } },
    launch: options.launch ?? (image ? runtimeContainerLauncher({ ...runtimeLog, image: image.id, port: "free" }) : runtimeProcessLauncher(runtimeLog)),
    onJobUpdate: options.onJobUpdate,
  });

  // The handler reads its configuration and the SDK its endpoints from process.env, as in Lambda.
  const savedEnv = { ...process.env };
  Object.assign(process.env, s3.env, localTriggerEnvironment(stack), { AWS_ENDPOINT_URL_SAGEMAKER: runner.endpoint, AWS_REGION: stack.config.region });
  const handle = createTriggerHandler({ logger: createTriggerLogger(logStream("trigger.log")) });

  const deliveries: Delivery[] = [];
  const pending = new Set<Promise<unknown>>();
  const deliver = async (event: S3Event): Promise<Delivery> => {
    const delivery: Delivery = { event, attempts: 0 };
    deliveries.push(delivery);
    for (let attempt = 0; attempt <= LAMBDA_ASYNC_RETRIES; attempt++) {
      delivery.attempts++;
      try {
        delivery.result = await handle(event, { awsRequestId: `local-${deliveries.length}-${attempt}` });
        delivery.error = undefined;
        break;
      } catch (error) {
        delivery.error = error instanceof Error ? error.message : String(error);
        if (attempt < LAMBDA_ASYNC_RETRIES) await new Promise((resolve) => setTimeout(resolve, options.lambdaRetryDelayMs ?? 1000));
      }
    }
    return delivery;
  };
  s3.onObjectCreated((record) => {
    const event = shapeS3Event(record, { region: stack.config.region, bucket: stack.bucket, rule: stack.rule });
    if (!event) return;
    const task = deliver(event);
    pending.add(task);
    void task.finally(() => pending.delete(task));
  });
  const settled = async () => {
    // s3rver emits the event around the time it answers the PUT: give it a turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    while (pending.size > 0) await Promise.allSettled([...pending]);
  };

  return {
    s3,
    runner,
    s3DataDir,
    logDir,
    deliveries: () => [...deliveries],
    deliver,
    settled,
    async uploadRun(runId, inputName, inputBytes) {
      const folder = `${stack.config.prefixes.input}${runId}/`;
      const before = deliveries.length;
      await s3.client.send(new PutObjectCommand({ Bucket: stack.bucket, Key: `${folder}${inputName}`, Body: inputBytes, ContentType: "application/x-netcdf" }));
      await s3.client.send(new PutObjectCommand({ Bucket: stack.bucket, Key: `${folder}_SUCCESS`, Body: new Uint8Array(0), ContentLength: 0 }));
      await settled();
      return deliveries.slice(before).flatMap((d) => d.result?.outcomes ?? []);
    },
    async stop() {
      await settled();
      await runner.stop();
      await s3.stop();
      for (const stream of logs) await new Promise<void>((resolve) => stream.end(() => resolve()));
      for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
      Object.assign(process.env, savedEnv);
    },
  };
}
