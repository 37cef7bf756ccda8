/**
 * A loopback stand-in for the SageMaker control plane's Batch Transform operations, speaking
 * the real wire protocol (awsJson1_1: POST /, X-Amz-Target: SageMaker.<Operation>), so the real
 * @aws-sdk/client-sagemaker reaches it through AWS_ENDPOINT_URL_SAGEMAKER. Each created job is
 * executed as Batch Transform executes a single-record job: start the model's container, wait
 * for /ping, read /execution-parameters, POST each input object to /invocations (with the
 * job's timeout and retries) and write the response to `<S3OutputPath>/<object name>.out`.
 * No maintained library emulates Batch Transform (moto/LocalStack are Python/Docker only),
 * hence this module.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { parseS3Uri, TransformJobRequest, validateCreateTransformJob, ValidTransformJob } from "./transform-validation";
import { partitionOfRegion } from "../components/partition";
import { ApiError, readJsonBody, sageMakerTarget } from "./sagemaker-wire";

/** A started model container: where it listens and how to stop it. */
export interface RunningContainer {
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  /** Settles when the container process ends by itself (with a description of how it ended). */
  exited: Promise<string>;
  stop(): Promise<void>;
}

/** Starts a container for a job with the merged model + job environment (as `docker run <image> serve`). */
export type ContainerLauncher = (request: { jobName: string; image: string; environment: Record<string, string> }) => Promise<RunningContainer>;

/** What CreateModel would have registered. */
export interface LocalModel {
  image: string;
  environment?: Record<string, string>;
}

export interface TransformRunnerOptions {
  s3: S3Client;
  models: Record<string, LocalModel>;
  launch: ContainerLauncher;
  region?: string;
  accountId?: string;
  /** How long the container may take to answer /ping with 200 (default 10 min). */
  pingTimeoutMs?: number;
  pingIntervalMs?: number;
  /** Called on every status change (for progress displays and logs). */
  onJobUpdate?: (job: TransformJobRecord) => void;
  /**
   * The account's transform-instance quota: CreateTransformJob answers ResourceLimitExceeded while
   * this many instances are InProgress (unlimited when omitted).
   */
  quota?: number;
}

export type TransformJobStatus = "InProgress" | "Completed" | "Failed" | "Stopping" | "Stopped";

export interface TransformJobRecord {
  request: ValidTransformJob;
  arn: string;
  status: TransformJobStatus;
  failureReason?: string;
  creationTime: Date;
  transformStartTime?: Date;
  transformEndTime?: Date;
  /** Output objects written, as s3:// URIs. */
  outputs: string[];
  /** Invocation attempts made (1 + retries used). */
  invocationAttempts: number;
}

export interface TransformRunner {
  /** http://127.0.0.1:<port>: the value for AWS_ENDPOINT_URL_SAGEMAKER. */
  endpoint: string;
  jobs(): TransformJobRecord[];
  /** Resolves when the named job is Completed or Failed. */
  waitForJob(name: string, timeoutMs?: number): Promise<TransformJobRecord>;
  /** Every request received, in order: operation names as sent in X-Amz-Target. */
  operations(): string[];
  stop(): Promise<void>;
}

const DEFAULT_MAX_PAYLOAD_MB = 6;

export async function startTransformRunner(options: TransformRunnerOptions): Promise<TransformRunner> {
  const region = options.region ?? "cn-northwest-1";
  const accountId = options.accountId ?? "000000000000";
  const partition = partitionOfRegion(region);
  const jobs = new Map<string, TransformJobRecord>();
  const running = new Map<string, Promise<void>>();
  const containers = new Set<RunningContainer>();
  const operations: string[] = [];
  const waiters = new Map<string, Array<() => void>>();

  const update = (job: TransformJobRecord) => {
    options.onJobUpdate?.(job);
    if (job.status === "Completed" || job.status === "Failed") {
      for (const wake of waiters.get(job.request.TransformJobName) ?? []) wake();
      waiters.delete(job.request.TransformJobName);
    }
  };

  const handlers: Record<string, (body: Record<string, unknown>) => unknown> = {
    CreateTransformJob(body) {
      const result = validateCreateTransformJob(body as TransformJobRequest);
      if (!result.ok) throw new ApiError("ValidationException", result.message);
      const request = result.job;
      const arn = `arn:${partition}:sagemaker:${region}:${accountId}:transform-job/${request.TransformJobName.toLowerCase()}`;
      // Names are unique forever (transform jobs cannot be deleted). The ARN carries the name in
      // lower case, so names that differ only in case would share an ARN: treat them as one job.
      if (jobs.has(request.TransformJobName.toLowerCase()))
        throw new ApiError("ResourceInUse", `Job name must be unique within an AWS account and region, and a job with this name already exists (${arn})`);
      const model = options.models[request.ModelName];
      if (!model) throw new ApiError("ValidationException", `Could not find model "arn:${partition}:sagemaker:${region}:${accountId}:model/${request.ModelName.toLowerCase()}".`);
      const inUse = [...jobs.values()].filter((j) => j.status === "InProgress").reduce((n, j) => n + j.request.TransformResources.InstanceCount, 0);
      if (options.quota !== undefined && inUse + request.TransformResources.InstanceCount > options.quota)
        throw new ApiError("ResourceLimitExceeded", `The account-level service limit '${request.TransformResources.InstanceType} for transform job usage' is ${options.quota} Instances, with current utilization of ${inUse} Instances and a request delta of ${request.TransformResources.InstanceCount} Instances. Please use AWS Service Quotas to request an increase for this quota.`);
      const job: TransformJobRecord = { request, arn, status: "InProgress", creationTime: new Date(), outputs: [], invocationAttempts: 0 };
      jobs.set(request.TransformJobName.toLowerCase(), job);
      update(job);
      running.set(job.request.TransformJobName, executeJob(job, model));
      return { TransformJobArn: arn };
    },
    ListTransformJobs(body) {
      // Filters and paging as the API documents them: StatusEquals, NameContains (case-insensitive),
      // CreationTimeAfter/Before (epoch seconds on the wire), SortBy CreationTime, MaxResults 1-100, NextToken.
      const max = body.MaxResults === undefined ? 10 : Number(body.MaxResults);
      if (!Number.isInteger(max) || max < 1 || max > 100) throw new ApiError("ValidationException", `1 validation error detected: Value '${body.MaxResults}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100`);
      const contains = typeof body.NameContains === "string" ? body.NameContains.toLowerCase() : undefined;
      const after = typeof body.CreationTimeAfter === "number" ? body.CreationTimeAfter * 1000 : undefined;
      const before = typeof body.CreationTimeBefore === "number" ? body.CreationTimeBefore * 1000 : undefined;
      let list = [...jobs.values()]
        .filter((j) => body.StatusEquals === undefined || j.status === body.StatusEquals)
        .filter((j) => contains === undefined || j.request.TransformJobName.toLowerCase().includes(contains))
        .filter((j) => after === undefined || j.creationTime.getTime() > after)
        .filter((j) => before === undefined || j.creationTime.getTime() < before)
        .sort((a, b) => b.creationTime.getTime() - a.creationTime.getTime());
      if (body.SortOrder === "Ascending") list = list.reverse();
      const offset = typeof body.NextToken === "string" ? Number(body.NextToken) : 0;
      const page = list.slice(offset, offset + max);
      const seconds = (date: Date | undefined) => (date ? date.getTime() / 1000 : undefined);
      return {
        TransformJobSummaries: page.map((j) => ({
          TransformJobName: j.request.TransformJobName,
          TransformJobArn: j.arn,
          CreationTime: seconds(j.creationTime),
          TransformEndTime: seconds(j.transformEndTime),
          TransformJobStatus: j.status,
          FailureReason: j.failureReason,
        })),
        ...(offset + max < list.length ? { NextToken: String(offset + max) } : {}),
      };
    },
    DescribeTransformJob(body) {
      const name = body.TransformJobName;
      if (typeof name !== "string" || name.length === 0)
        throw new ApiError("ValidationException", "1 validation error detected: Value null at 'transformJobName' failed to satisfy constraint: Member must not be null");
      const job = jobs.get(name.toLowerCase());
      if (!job) throw new ApiError("ResourceNotFound", `Could not find requested job with name ${name}`);
      return describe(job);
    },
  };

  async function executeJob(job: TransformJobRecord, model: LocalModel): Promise<void> {
    const request = job.request;
    let container: RunningContainer | undefined;
    try {
      job.transformStartTime = new Date();
      const environment = batchEnvironment(model, request);
      container = await options.launch({ jobName: request.TransformJobName, image: model.image, environment });
      containers.add(container);
      await waitForPing(container, options.pingTimeoutMs ?? 600_000, options.pingIntervalMs ?? 500);
      const parameters = await executionParameters(container.url);
      const maxPayloadMB = request.MaxPayloadInMB ?? parameters.MaxPayloadInMB ?? DEFAULT_MAX_PAYLOAD_MB;
      const { bucket, key: inputKey } = parseS3Uri(request.TransformInput.DataSource.S3DataSource.S3Uri);
      if (request.TransformInput.DataSource.S3DataSource.S3DataType !== "S3Prefix")
        throw new Error(`ClientError: this local runner supports S3DataType S3Prefix only, got ${request.TransformInput.DataSource.S3DataSource.S3DataType}`);
      const keys = await listKeys(options.s3, bucket, inputKey);
      if (keys.length === 0) throw new Error(`ClientError: No S3 objects found under S3 URL "${request.TransformInput.DataSource.S3DataSource.S3Uri}" given in input data source. Please ensure that the bucket exists in the selected region (${region}), that objects exist under that S3 prefix, and that the role has "s3:ListBucket" permissions on bucket "${bucket}".`);
      for (const key of keys) {
        const payload = await getBytes(options.s3, bucket, key);
        if (maxPayloadMB > 0 && payload.length > maxPayloadMB * 1024 * 1024)
          throw new Error(`ClientError: Too much data for max payload size: s3://${bucket}/${key} is ${payload.length} bytes, MaxPayloadInMB is ${maxPayloadMB}`);
        const response = await invoke(job, container.url, payload, request.TransformInput.ContentType, `s3://${bucket}/${key}`);
        const target = outputLocation(request.TransformOutput.S3OutputPath, inputKey, key);
        await options.s3.send(new PutObjectCommand({ Bucket: target.bucket, Key: target.key, Body: response, ContentType: request.TransformOutput.Accept }));
        job.outputs.push(`s3://${target.bucket}/${target.key}`);
      }
      job.status = "Completed";
    } catch (error) {
      job.status = "Failed";
      job.failureReason = (error instanceof Error ? error.message : String(error)).slice(0, 1024);
    } finally {
      job.transformEndTime = new Date();
      if (container) {
        containers.delete(container);
        await container.stop().catch(() => undefined);
      }
      update(job);
    }
  }

  async function invoke(job: TransformJobRecord, url: string, payload: Buffer, contentType: string | undefined, source: string): Promise<Buffer> {
    const { InvocationsTimeoutInSeconds: timeout, InvocationsMaxRetries: retries } = job.request.ModelClientConfig;
    let lastFault = "";
    for (let attempt = 0; attempt <= retries; attempt++) {
      job.invocationAttempts++;
      try {
        const response = await fetch(`${url}/invocations`, {
          method: "POST",
          headers: contentType ? { "content-type": contentType } : {},
          body: payload,
          signal: AbortSignal.timeout(timeout * 1000),
        });
        const body = Buffer.from(await response.arrayBuffer());
        if (response.ok) return body;
        lastFault = `/invocations returned HTTP ${response.status}: ${body.toString("utf8").slice(0, 500)}`;
      } catch (error) {
        const name = error instanceof Error ? error.name : "";
        lastFault = name === "TimeoutError" ? `/invocations did not answer within InvocationsTimeoutInSeconds=${timeout}` : `/invocations request failed: ${String(error)}`;
      }
    }
    throw new Error(`AlgorithmError: ${source}: ${lastFault} (after ${retries + 1} attempt(s))`);
  }

  const server: Server = createServer((req, res) => void route(req, res));

  async function route(req: IncomingMessage, res: ServerResponse) {
    const requestId = randomUUID();
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": requestId });
      res.end(JSON.stringify(body));
    };
    try {
      const { target, operation } = sageMakerTarget(req, operations);
      if (req.method !== "POST" || req.url !== "/") throw new ApiError("UnknownOperationException", `Unsupported request ${req.method} ${req.url}`, 404);
      const handler = handlers[operation];
      if (!handler) throw new ApiError("UnknownOperationException", `Operation ${JSON.stringify(target)} is not implemented by the local transform runner`);
      send(200, handler(await readJsonBody(req)));
    } catch (error) {
      if (error instanceof ApiError) send(error.status, { __type: error.type, message: error.message });
      else send(500, { __type: "InternalFailure", message: String(error) });
    }
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    endpoint,
    jobs: () => [...jobs.values()],
    operations: () => [...operations],
    waitForJob(name, timeoutMs = 600_000) {
      const job = jobs.get(name.toLowerCase());
      if (!job) return Promise.reject(new Error(`no transform job named ${name}`));
      if (job.status === "Completed" || job.status === "Failed") return Promise.resolve(job);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`transform job ${name} still ${job.status} after ${timeoutMs} ms`)), timeoutMs);
        const list = waiters.get(job.request.TransformJobName) ?? [];
        list.push(() => { clearTimeout(timer); resolve(job); });
        waiters.set(job.request.TransformJobName, list);
      });
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // Like StopTransformJob: running containers are stopped and their jobs end.
      await Promise.allSettled([...containers].map((container) => container.stop()));
      await Promise.allSettled(running.values());
    },
  };
}

/** The environment Batch Transform gives the container: the model's, the job's over it, then its own variables. */
export function batchEnvironment(model: LocalModel, request: ValidTransformJob): Record<string, string> {
  const environment: Record<string, string> = { ...(model.environment ?? {}), ...request.Environment, SAGEMAKER_BATCH: "true" };
  if (request.MaxPayloadInMB !== undefined) environment.SAGEMAKER_MAX_PAYLOAD_IN_MB = String(request.MaxPayloadInMB);
  if (request.BatchStrategy !== undefined) environment.SAGEMAKER_BATCH_STRATEGY = request.BatchStrategy === "MultiRecord" ? "MULTI_RECORD" : "SINGLE_RECORD";
  if (request.MaxConcurrentTransforms !== undefined) environment.SAGEMAKER_MAX_CONCURRENT_TRANSFORMS = String(request.MaxConcurrentTransforms);
  return environment;
}

/**
 * Where Batch Transform writes the response for one input object: the object's path relative
 * to the input URI's last "/", plus ".out", under S3OutputPath.
 */
export function outputLocation(s3OutputPath: string, inputKeyOrPrefix: string, objectKey: string): { bucket: string; key: string } {
  const { bucket, key: outputPrefix } = parseS3Uri(s3OutputPath);
  const relative = objectKey.slice(inputKeyOrPrefix.lastIndexOf("/") + 1);
  const base = outputPrefix === "" || outputPrefix.endsWith("/") ? outputPrefix : `${outputPrefix}/`;
  return { bucket, key: `${base}${relative}.out` };
}

function describe(job: TransformJobRecord) {
  const r = job.request;
  const seconds = (date: Date | undefined) => (date ? date.getTime() / 1000 : undefined);
  return {
    TransformJobName: r.TransformJobName,
    TransformJobArn: job.arn,
    TransformJobStatus: job.status,
    FailureReason: job.failureReason,
    ModelName: r.ModelName,
    MaxConcurrentTransforms: r.MaxConcurrentTransforms,
    ModelClientConfig: r.ModelClientConfig,
    MaxPayloadInMB: r.MaxPayloadInMB,
    BatchStrategy: r.BatchStrategy,
    Environment: r.Environment,
    TransformInput: r.TransformInput,
    TransformOutput: r.TransformOutput,
    TransformResources: r.TransformResources,
    DataProcessing: r.DataProcessing,
    CreationTime: seconds(job.creationTime),
    TransformStartTime: seconds(job.transformStartTime),
    TransformEndTime: seconds(job.transformEndTime),
  };
}

export async function waitForPing(container: RunningContainer, timeoutMs: number, intervalMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitReason: string | undefined;
  void container.exited.then((reason) => { exitReason = reason; });
  let lastFault = "no answer yet";
  while (Date.now() < deadline) {
    if (exitReason !== undefined) throw new Error(`ClientError: the container exited before answering /ping: ${exitReason}`);
    try {
      const response = await fetch(`${container.url}/ping`, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
      lastFault = `HTTP ${response.status}`;
    } catch (error) {
      lastFault = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`ClientError: the container did not answer /ping with 200 within ${Math.round(timeoutMs / 1000)} s (last: ${lastFault})`);
}

/** GET /execution-parameters is optional: a 404 (or anything but JSON) means "no preference". */
async function executionParameters(url: string): Promise<{ MaxPayloadInMB?: number; BatchStrategy?: string; MaxConcurrentTransforms?: number }> {
  try {
    const response = await fetch(`${url}/execution-parameters`, { signal: AbortSignal.timeout(2000) });
    if (!response.ok) return {};
    const parsed = await response.json();
    return typeof parsed === "object" && parsed !== null ? parsed : {};
  } catch {
    return {};
  }
}

async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) if (object.Key && !object.Key.endsWith("/")) keys.push(object.Key);
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

async function getBytes(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await object.Body!.transformToByteArray());
}

