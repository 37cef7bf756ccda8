/**
 * A loopback stand-in for a SageMaker asynchronous inference endpoint, on the real wire protocols so
 * the real AWS SDK clients reach it: the control plane's CreateEndpointConfig / CreateEndpoint /
 * DescribeEndpoint (awsJson1_1, `X-Amz-Target: SageMaker.<Operation>`, via AWS_ENDPOINT_URL_SAGEMAKER)
 * and the runtime's InvokeEndpointAsync (restJson1, `POST /endpoints/<name>/async-invocations`, the
 * parameters in `X-Amzn-SageMaker-*` headers, answered 202, via AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME).
 *
 * Documented semantics it keeps (SageMaker API reference InvokeEndpointAsync, the developer guide's
 * async-inference pages):
 * - a request is queued and the call returns at once with InferenceId, OutputLocation and
 *   FailureLocation; SageMaker reads the payload from InputLocation, POSTs it to the container's
 *   /invocations with the request's Content-Type and Accept (and CustomAttributes), and writes the
 *   response to `<S3OutputPath><InferenceId>.out` (the file name "based on the inference ID") or, on
 *   an error status or timeout, to `<S3FailurePath><InferenceId>-error.out`;
 * - InvocationTimeoutSeconds 1-3600 (default 900), RequestTTLSeconds 60-21600 (default 21600), the
 *   bounds the dispatcher uses too (INVOKE_ENDPOINT_ASYNC_LIMITS): a request still queued after its
 *   TTL expires unprocessed;
 * - the InferenceId is an identifier only: a repeated id is queued again (SageMaker does not
 *   deduplicate; exactly-once is the caller's job);
 * - MaxConcurrentInvocationsPerInstance invocations per instance; instances scale out from zero when
 *   a backlog appears (up to maxInstances) and back in after an idle period, to zero;
 * - success and error notifications carry invocationStatus, inferenceId, the request and response
 *   locations (async-inference-check-predictions).
 * Instances are runtime processes (or containers) started with the model's environment; one stays
 * warm between invocations until it has been idle for `idleMs`. No maintained library emulates async
 * inference (moto/LocalStack are Python/Docker only), hence this module.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { partitionOfRegion } from "../components/partition";
import { ApiError, readBody, readJsonBody, sageMakerTarget } from "./sagemaker-wire";
import { waitForPing, type ContainerLauncher, type LocalModel, type RunningContainer } from "./transform-runner";
import { parseS3Uri } from "./transform-validation";
import { INVOKE_ENDPOINT_ASYNC_LIMITS } from "../trigger/async-job-control";

/** Async inference payloads: up to 1 GB. */
export const MAX_ASYNC_PAYLOAD_BYTES = 1024 ** 3;

export type InvocationStatus = "Queued" | "InProgress" | "Completed" | "Failed" | "Expired";

export interface AsyncInvocationRecord {
  endpointName: string;
  inferenceId: string;
  inputLocation: string;
  outputLocation: string;
  failureLocation: string;
  contentType?: string;
  accept?: string;
  customAttributes?: string;
  invocationTimeoutSeconds: number;
  requestTtlSeconds: number;
  status: InvocationStatus;
  receivedAt: Date;
  startedAt?: Date;
  endedAt?: Date;
  /** An instance with models loaded was idle when the request was taken: no start-up in its wait. */
  warm?: boolean;
  failureReason?: string;
}

/** What SageMaker publishes to the success or error topic. */
export interface AsyncNotification {
  awsRegion: string;
  eventTime: string;
  receivedTime: string;
  invocationStatus: "Completed" | "Failed";
  requestParameters: { accept?: string; contentType?: string; endpointName: string; inputLocation: string };
  responseParameters: { contentType?: string; outputLocation?: string; failureLocation?: string };
  inferenceId: string;
  failureReason?: string;
  eventVersion: "1.0";
  eventSource: "aws:sagemaker";
  eventName: "InferenceResult";
}

export interface AsyncEndpointRunnerOptions {
  s3: S3Client;
  models: Record<string, LocalModel>;
  launch: ContainerLauncher;
  region?: string;
  accountId?: string;
  /** Scale-in: an instance idle this long is stopped (the endpoint goes to zero instances). */
  idleMs: number;
  /** Autoscaling maximum (fuxi:serving.maxInstances). */
  maxInstances?: number;
  pingTimeoutMs?: number;
  pingIntervalMs?: number;
  onInvocationUpdate?: (invocation: AsyncInvocationRecord) => void;
  /** SNS publish of a success or error notification, by topic ARN. */
  onNotification?: (topicArn: string, message: AsyncNotification) => void;
  /** Instance lifecycle, for displays and tests. */
  onInstanceEvent?: (event: { endpointName: string; event: "starting" | "ready" | "stopped"; instances: number; at: Date }) => void;
}

interface EndpointConfig {
  name: string;
  arn: string;
  variantName: string;
  modelName: string;
  initialInstanceCount: number;
  perInstance: number;
  outputPath: string;
  failurePath: string;
  successTopic?: string;
  errorTopic?: string;
}

interface Instance {
  container?: RunningContainer;
  ready: Promise<void>;
  isReady: boolean;
  busy: number;
  idleTimer?: NodeJS.Timeout;
}

interface Endpoint {
  name: string;
  arn: string;
  config: EndpointConfig;
  status: "Creating" | "InService" | "Failed";
  failureReason?: string;
  creationTime: Date;
  instances: Set<Instance>;
  /** Scheduled actions (warm windows) raise this; scale-in never goes below it. */
  minCapacity: number;
  queue: AsyncInvocationRecord[];
}

export interface AsyncEndpointRunner {
  /** For AWS_ENDPOINT_URL_SAGEMAKER and AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME. */
  endpoint: string;
  invocations(): AsyncInvocationRecord[];
  /** Running instances of an endpoint (0 after scale-in). */
  instanceCount(endpointName: string): number;
  /** A warm window: keep at least `min` instances (starting them now), as a scheduled action does. */
  setMinCapacity(endpointName: string, min: number): Promise<void>;
  waitForInvocation(inferenceId: string, timeoutMs?: number): Promise<AsyncInvocationRecord>;
  operations(): string[];
  stop(): Promise<void>;
}

const INFERENCE_ID = /^\S[\x20-\x7e]*$/;

export async function startAsyncEndpointRunner(options: AsyncEndpointRunnerOptions): Promise<AsyncEndpointRunner> {
  const region = options.region ?? "cn-northwest-1";
  const accountId = options.accountId ?? "000000000000";
  const partition = partitionOfRegion(region);
  const arn = (resource: string) => `arn:${partition}:sagemaker:${region}:${accountId}:${resource}`;
  const maxInstances = options.maxInstances ?? 1;
  const configs = new Map<string, EndpointConfig>();
  const endpoints = new Map<string, Endpoint>();
  const invocations: AsyncInvocationRecord[] = [];
  const operations: string[] = [];
  const waiters = new Map<AsyncInvocationRecord, Array<() => void>>();
  const work = new Set<Promise<unknown>>();
  let stopped = false;

  const track = <T>(p: Promise<T>) => {
    work.add(p);
    void p.finally(() => work.delete(p)).catch(() => undefined);
    return p;
  };
  const update = (inv: AsyncInvocationRecord) => {
    options.onInvocationUpdate?.(inv);
    if (inv.status === "Completed" || inv.status === "Failed" || inv.status === "Expired") {
      for (const wake of waiters.get(inv) ?? []) wake();
      waiters.delete(inv);
    }
  };

  const control: Record<string, (body: Record<string, any>) => unknown> = {
    CreateEndpointConfig(body) {
      const name = requiredName(body.EndpointConfigName, "endpointConfigName");
      if (configs.has(name)) throw new ApiError("ValidationException", `Cannot create already existing endpoint configuration "${arn(`endpoint-config/${name.toLowerCase()}`)}".`);
      const variants = body.ProductionVariants as Record<string, any>[] | undefined;
      if (!Array.isArray(variants) || variants.length !== 1) throw new ApiError("ValidationException", "this local runner serves endpoint configurations with exactly one production variant");
      const v = variants[0]!;
      if (!options.models[v.ModelName]) throw new ApiError("ValidationException", `Could not find model "${arn(`model/${String(v.ModelName).toLowerCase()}`)}".`);
      const output = body.AsyncInferenceConfig?.OutputConfig;
      if (!output?.S3OutputPath) throw new ApiError("ValidationException", "this local runner emulates asynchronous endpoints only: AsyncInferenceConfig.OutputConfig.S3OutputPath is required");
      const dir = (uri: string) => (uri.endsWith("/") ? uri : `${uri}/`);
      const config: EndpointConfig = {
        name,
        arn: arn(`endpoint-config/${name.toLowerCase()}`),
        variantName: String(v.VariantName ?? "AllTraffic"),
        modelName: v.ModelName,
        initialInstanceCount: Number(v.InitialInstanceCount ?? 1),
        perInstance: Number(body.AsyncInferenceConfig.ClientConfig?.MaxConcurrentInvocationsPerInstance ?? 1),
        outputPath: dir(output.S3OutputPath),
        failurePath: dir(output.S3FailurePath ?? output.S3OutputPath),
        successTopic: output.NotificationConfig?.SuccessTopic,
        errorTopic: output.NotificationConfig?.ErrorTopic,
      };
      configs.set(name, config);
      return { EndpointConfigArn: config.arn };
    },
    CreateEndpoint(body) {
      const name = requiredName(body.EndpointName, "endpointName");
      if (endpoints.has(name)) throw new ApiError("ValidationException", `Cannot create already existing endpoint "${arn(`endpoint/${name.toLowerCase()}`)}".`);
      const config = configs.get(String(body.EndpointConfigName));
      if (!config) throw new ApiError("ValidationException", `Could not find endpoint configuration "${arn(`endpoint-config/${String(body.EndpointConfigName).toLowerCase()}`)}".`);
      const endpoint: Endpoint = { name, arn: arn(`endpoint/${name.toLowerCase()}`), config, status: "Creating", creationTime: new Date(), instances: new Set(), minCapacity: 0, queue: [] };
      endpoints.set(name, endpoint);
      // CreateEndpoint brings up InitialInstanceCount instances; InService once they answer /ping.
      const starting = Array.from({ length: Math.min(config.initialInstanceCount, maxInstances) }, () => startInstance(endpoint));
      track(Promise.all(starting.map((i) => i.ready)).then(
        () => { endpoint.status = "InService"; pump(endpoint); },
        (error: unknown) => { endpoint.status = "Failed"; endpoint.failureReason = String((error as Error).message ?? error); },
      ));
      return { EndpointArn: endpoint.arn };
    },
    DescribeEndpoint(body) {
      const endpoint = endpoints.get(String(body.EndpointName));
      if (!endpoint) throw new ApiError("ValidationException", `Could not find endpoint "${arn(`endpoint/${String(body.EndpointName).toLowerCase()}`)}".`);
      const current = [...endpoint.instances].filter((i) => i.isReady).length;
      return {
        EndpointName: endpoint.name,
        EndpointArn: endpoint.arn,
        EndpointConfigName: endpoint.config.name,
        EndpointStatus: endpoint.status,
        FailureReason: endpoint.failureReason,
        ProductionVariants: [{ VariantName: endpoint.config.variantName, CurrentInstanceCount: current, DesiredInstanceCount: endpoint.instances.size }],
        AsyncInferenceConfig: { OutputConfig: { S3OutputPath: endpoint.config.outputPath, S3FailurePath: endpoint.config.failurePath } },
        CreationTime: endpoint.creationTime.getTime() / 1000,
      };
    },
  };

  function invokeEndpointAsync(name: string, headers: IncomingMessage["headers"]): { status: number; headers: Record<string, string>; body: unknown } {
    const endpoint = endpoints.get(name);
    if (!endpoint || endpoint.status === "Failed") throw new ApiError("ValidationError", `Endpoint ${name} of account ${accountId} not found.`);
    const header = (h: string) => (typeof headers[h] === "string" ? (headers[h] as string) : undefined);
    const inputLocation = header("x-amzn-sagemaker-inputlocation");
    if (!inputLocation) throw new ApiError("ValidationError", "1 validation error detected: Value null at 'inputLocation' failed to satisfy constraint: Member must not be null");
    try {
      parseS3Uri(inputLocation);
    } catch {
      throw new ApiError("ValidationError", `InputLocation ${JSON.stringify(inputLocation)} is not an S3 URI`);
    }
    const inferenceId = header("x-amzn-sagemaker-inference-id") ?? randomUUID();
    if (inferenceId.length > 64 || !INFERENCE_ID.test(inferenceId)) throw new ApiError("ValidationError", `1 validation error detected: Value '${inferenceId}' at 'inferenceId' failed to satisfy constraint: Member must have length less than or equal to 64 and match [\\S][\\p{Print}]*`);
    const seconds = (h: string, { min, max, default: fallback }: { min: number; max: number; default: number }) => {
      const text = header(h);
      if (text === undefined) return fallback;
      const n = Number(text);
      if (!Number.isInteger(n) || n < min || n > max) throw new ApiError("ValidationError", `${h}: ${text} is not an integer from ${min} to ${max}`);
      return n;
    };
    const invocation: AsyncInvocationRecord = {
      endpointName: name,
      inferenceId,
      inputLocation,
      outputLocation: `${endpoint.config.outputPath}${inferenceId}.out`,
      failureLocation: `${endpoint.config.failurePath}${inferenceId}-error.out`,
      contentType: header("x-amzn-sagemaker-content-type"),
      accept: header("x-amzn-sagemaker-accept"),
      customAttributes: header("x-amzn-sagemaker-custom-attributes"),
      invocationTimeoutSeconds: seconds("x-amzn-sagemaker-invocationtimeoutseconds", INVOKE_ENDPOINT_ASYNC_LIMITS.invocationTimeoutSeconds),
      requestTtlSeconds: seconds("x-amzn-sagemaker-requestttlseconds", INVOKE_ENDPOINT_ASYNC_LIMITS.requestTtlSeconds),
      status: "Queued",
      receivedAt: new Date(),
    };
    invocations.push(invocation);
    endpoint.queue.push(invocation);
    update(invocation);
    pump(endpoint);
    return {
      status: 202,
      headers: { "x-amzn-sagemaker-outputlocation": invocation.outputLocation, "x-amzn-sagemaker-failurelocation": invocation.failureLocation },
      body: { InferenceId: inferenceId },
    };
  }

  function startInstance(endpoint: Endpoint): Instance {
    const model = options.models[endpoint.config.modelName]!;
    const instance: Instance = { ready: Promise.resolve(), isReady: false, busy: 0 };
    options.onInstanceEvent?.({ endpointName: endpoint.name, event: "starting", instances: endpoint.instances.size + 1, at: new Date() });
    instance.ready = (async () => {
      instance.container = await options.launch({ jobName: endpoint.name, image: model.image, environment: { ...(model.environment ?? {}) } });
      await waitForPing(instance.container, options.pingTimeoutMs ?? 600_000, options.pingIntervalMs ?? 200);
      instance.isReady = true;
      options.onInstanceEvent?.({ endpointName: endpoint.name, event: "ready", instances: endpoint.instances.size, at: new Date() });
    })();
    endpoint.instances.add(instance);
    track(instance.ready.then(() => pump(endpoint), async (error: unknown) => {
      endpoint.instances.delete(instance);
      await instance.container?.stop().catch(() => undefined);
      for (const inv of endpoint.queue.splice(0)) await fail(endpoint, inv, `instance failed to start: ${(error as Error).message ?? error}`);
    }));
    return instance;
  }

  function stopInstance(endpoint: Endpoint, instance: Instance): void {
    endpoint.instances.delete(instance);
    clearTimeout(instance.idleTimer);
    track((async () => {
      await instance.container?.stop().catch(() => undefined);
      options.onInstanceEvent?.({ endpointName: endpoint.name, event: "stopped", instances: endpoint.instances.size, at: new Date() });
    })());
  }

  /** Scale-in: an instance with nothing to do for idleMs goes, down to minCapacity. */
  function armIdle(endpoint: Endpoint, instance: Instance): void {
    clearTimeout(instance.idleTimer);
    instance.idleTimer = setTimeout(() => {
      if (stopped || instance.busy > 0 || endpoint.queue.length > 0 || endpoint.instances.size <= endpoint.minCapacity) return;
      stopInstance(endpoint, instance);
    }, options.idleMs);
    instance.idleTimer.unref();
  }

  function pump(endpoint: Endpoint): void {
    if (stopped) return;
    const now = Date.now();
    for (const inv of endpoint.queue.filter((i) => now - i.receivedAt.getTime() > i.requestTtlSeconds * 1000)) {
      endpoint.queue.splice(endpoint.queue.indexOf(inv), 1);
      inv.status = "Expired";
      track(fail(endpoint, inv, `request expired: queued longer than RequestTTLSeconds=${inv.requestTtlSeconds}`, "Expired"));
    }
    while (endpoint.queue.length > 0) {
      const free = [...endpoint.instances].find((i) => i.isReady && i.busy < endpoint.config.perInstance);
      if (free) {
        const inv = endpoint.queue.shift()!;
        inv.warm ??= true; // an idle instance with its models loaded took it at once
        track(run(endpoint, free, inv));
        continue;
      }
      const starting = [...endpoint.instances].filter((i) => !i.isReady).length;
      // Scale out (from zero: HasBacklogWithoutCapacity) while the backlog exceeds the capacity coming up.
      if (starting * endpoint.config.perInstance < endpoint.queue.length && endpoint.instances.size < maxInstances) {
        startInstance(endpoint);
        continue;
      }
      for (const inv of endpoint.queue) inv.warm ??= false;
      break;
    }
  }

  async function run(endpoint: Endpoint, instance: Instance, inv: AsyncInvocationRecord): Promise<void> {
    instance.busy++;
    clearTimeout(instance.idleTimer);
    inv.status = "InProgress";
    inv.startedAt = new Date();
    update(inv);
    try {
      const { bucket, key } = parseS3Uri(inv.inputLocation);
      const object = await options.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const payload = Buffer.from(await object.Body!.transformToByteArray());
      if (payload.length > MAX_ASYNC_PAYLOAD_BYTES) throw new Error(`payload ${inv.inputLocation} is larger than 1 GB`);
      const headers: Record<string, string> = {};
      if (inv.contentType) headers["content-type"] = inv.contentType;
      if (inv.accept) headers.accept = inv.accept;
      if (inv.customAttributes) headers["x-amzn-sagemaker-custom-attributes"] = inv.customAttributes;
      let response: Response;
      try {
        response = await fetch(`${instance.container!.url}/invocations`, { method: "POST", headers, body: payload, signal: AbortSignal.timeout(inv.invocationTimeoutSeconds * 1000) });
      } catch (error) {
        throw new Error((error as Error).name === "TimeoutError" ? `the model did not answer within InvocationTimeoutSeconds=${inv.invocationTimeoutSeconds}` : `/invocations request failed: ${String(error)}`);
      }
      const body = Buffer.from(await response.arrayBuffer());
      if (!response.ok) {
        await put(inv.failureLocation, body, response.headers.get("content-type") ?? undefined);
        throw new Error(`Received server error (${response.status}) from model with message "${body.toString("utf8").slice(0, 500)}"`);
      }
      await put(inv.outputLocation, body, response.headers.get("content-type") ?? undefined);
      inv.status = "Completed";
      inv.endedAt = new Date();
      update(inv);
      notify(endpoint, inv, response.headers.get("content-type") ?? undefined);
    } catch (error) {
      if (inv.status === "InProgress") await fail(endpoint, inv, (error as Error).message, "Failed", true);
    } finally {
      instance.busy--;
      if (instance.busy === 0) armIdle(endpoint, instance);
      pump(endpoint);
    }
  }

  async function put(uri: string, body: Buffer, contentType?: string) {
    const { bucket, key } = parseS3Uri(uri);
    await options.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
  }

  async function fail(endpoint: Endpoint, inv: AsyncInvocationRecord, reason: string, status: "Failed" | "Expired" = "Failed", bodyWritten = false) {
    inv.status = status;
    inv.failureReason = reason;
    inv.endedAt = new Date();
    if (!bodyWritten) await put(inv.failureLocation, Buffer.from(JSON.stringify({ error: reason })), "application/json").catch(() => undefined);
    update(inv);
    notify(endpoint, inv);
  }

  function notify(endpoint: Endpoint, inv: AsyncInvocationRecord, responseContentType?: string) {
    const ok = inv.status === "Completed";
    const topic = ok ? endpoint.config.successTopic : endpoint.config.errorTopic;
    if (!topic) return;
    options.onNotification?.(topic, {
      awsRegion: region,
      eventTime: (inv.endedAt ?? new Date()).toISOString(),
      receivedTime: inv.receivedAt.toISOString(),
      invocationStatus: ok ? "Completed" : "Failed",
      requestParameters: { accept: inv.accept, contentType: inv.contentType, endpointName: inv.endpointName, inputLocation: inv.inputLocation },
      responseParameters: ok ? { contentType: responseContentType, outputLocation: inv.outputLocation } : { failureLocation: inv.failureLocation },
      inferenceId: inv.inferenceId,
      ...(ok ? {} : { failureReason: inv.failureReason }),
      eventVersion: "1.0",
      eventSource: "aws:sagemaker",
      eventName: "InferenceResult",
    });
  }

  const server: Server = createServer((req, res) => void route(req, res));

  async function route(req: IncomingMessage, res: ServerResponse) {
    const requestId = randomUUID();
    const asyncPath = /^\/endpoints\/([^/]+)\/async-invocations$/.exec(req.url?.split("?")[0] ?? "");
    try {
      if (asyncPath && req.method === "POST") {
        operations.push("InvokeEndpointAsync");
        await readBody(req); // the payload is in S3 (InputLocation); an inline Body is not emulated
        const result = invokeEndpointAsync(decodeURIComponent(asyncPath[1]!), req.headers);
        res.writeHead(result.status, { "content-type": "application/json", "x-amzn-requestid": requestId, ...result.headers });
        res.end(JSON.stringify(result.body));
        return;
      }
      const { target, operation } = sageMakerTarget(req, operations);
      const handler = control[operation];
      if (req.method !== "POST" || req.url !== "/" || !handler) throw new ApiError("UnknownOperationException", `Operation ${JSON.stringify(target || `${req.method} ${req.url}`)} is not implemented by the local async endpoint runner`, 404);
      const result = handler(await readJsonBody(req));
      res.writeHead(200, { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": requestId });
      res.end(JSON.stringify(result));
    } catch (error) {
      const e = error instanceof ApiError ? error : new ApiError("InternalFailure", String(error), 500);
      // awsJson1_1 reads __type from the body; restJson1 reads the x-amzn-errortype header.
      res.writeHead(e.status, { "content-type": "application/json", "x-amzn-requestid": requestId, "x-amzn-errortype": e.type });
      res.end(JSON.stringify({ __type: e.type, message: e.message }));
    }
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    endpoint,
    invocations: () => [...invocations],
    operations: () => [...operations],
    instanceCount: (name) => endpoints.get(name)?.instances.size ?? 0,
    async setMinCapacity(name, min) {
      const e = endpoints.get(name);
      if (!e) throw new Error(`no endpoint named ${name}`);
      e.minCapacity = Math.min(min, maxInstances);
      while (e.instances.size < e.minCapacity) startInstance(e);
      await Promise.all([...e.instances].map((i) => i.ready));
      for (const i of e.instances) if (i.busy === 0) armIdle(e, i);
    },
    waitForInvocation(inferenceId, timeoutMs = 600_000) {
      const inv = [...invocations].reverse().find((i) => i.inferenceId === inferenceId);
      if (!inv) return Promise.reject(new Error(`no invocation with inference id ${inferenceId}`));
      if (inv.status === "Completed" || inv.status === "Failed" || inv.status === "Expired") return Promise.resolve(inv);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`invocation ${inferenceId} still ${inv.status} after ${timeoutMs} ms`)), timeoutMs);
        const list = waiters.get(inv) ?? [];
        list.push(() => { clearTimeout(timer); resolve(inv); });
        waiters.set(inv, list);
      });
    },
    async stop() {
      stopped = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const e of endpoints.values()) for (const i of [...e.instances]) stopInstance(e, i);
      while (work.size > 0) await Promise.allSettled([...work]);
    },
  };
}

function requiredName(value: unknown, field: string): string {
  if (typeof value !== "string" || !/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/.test(value)) {
    throw new ApiError("ValidationException", `1 validation error detected: Value '${String(value)}' at '${field}' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`);
  }
  return value;
}
