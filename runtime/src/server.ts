// The SageMaker container contract: GET /ping, GET /execution-parameters, POST /invocations.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Logger } from "pino";
import type { RuntimeConfig } from "./config";
import { BusyError, InputFault } from "./errors";
import { parseForecastRequest, RequestError, RUNTIME_LOG_EVENTS, type ForecastRequest, type Manifest } from "./contract";
import { runForecast } from "./forecast";
import { InferenceEngine } from "./inference";
import type { InferenceReady } from "./inference-worker";
import { ModelFileError, prepareModelFiles, type ModelFile } from "./model-store";
import { eventLogger } from "./log-event";
import { createS3Client, S3Fault } from "./s3";
import { removeStaleRunDirs } from "./scratch";
import { processStartedAt } from "./usage";

const MAX_BODY_BYTES = 1024 * 1024;

export const EXECUTION_PARAMETERS = { MaxConcurrentTransforms: 1, BatchStrategy: "SINGLE_RECORD", MaxPayloadInMB: 1 };

type Readiness = { state: "starting" } | { state: "ready"; models: ModelFile[]; ready: InferenceReady } | { state: "failed"; reason: string };

export interface RunningServer {
  port: number;
  /** Resolves once models are loaded (or rejects with the reason /ping stays unhealthy). */
  ready: Promise<void>;
  /** Stops accepting, stops a running forecast at the next step boundary, ends the workers. */
  shutdown(): Promise<void>;
}

function send(response: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    response.writeHead(status, { "content-length": 0 });
    response.end();
    return;
  }
  const text = typeof body === "string" ? body : JSON.stringify(body);
  response.writeHead(status, { "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json", "content-length": Buffer.byteLength(text) });
  response.end(text);
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    request.on("data", (chunk: Buffer) => {
      length += chunk.length;
      if (length > MAX_BODY_BYTES) {
        reject(new RequestError("", `body is larger than ${MAX_BODY_BYTES} bytes; the request is a small JSON object that points at S3`));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

export async function startServer(config: RuntimeConfig, log: Logger, env: Record<string, string | undefined> = process.env): Promise<RunningServer> {
  let readiness: Readiness = { state: "starting" };
  const containerStartedAt = processStartedAt();
  let modelsReadyAt: Date | undefined;
  let running: ForecastRequest | undefined;
  const abort = new AbortController();
  const engine = new InferenceEngine();
  let s3: S3Client | undefined;
  const client = () => (s3 ??= createS3Client(env));
  const logEvent = eventLogger(log);

  const ready = (async () => {
    try {
      const removed = await removeStaleRunDirs(config.scratchDir).catch((error: unknown) => {
        log.warn({ err: error, scratchDir: config.scratchDir }, "cannot clean the scratch directory");
        return [];
      });
      if (removed.length > 0) log.info({ scratchDir: config.scratchDir, removed }, "removed the scratch folders of runs whose process died");
      const folder = await prepareModelFiles(config, client, log);
      engine.waitForStageFiles(folder.stageReady);
      const inference = await engine.init({ modelDir: folder.dir, providers: config.providers, intraOpThreads: config.intraOpThreads, keepAllStages: config.keepAllStages });
      const models = folder.files;
      readiness = { state: "ready", models, ready: inference };
      modelsReadyAt = new Date();
      logEvent(RUNTIME_LOG_EVENTS.ready, { modelDir: folder.dir, grid: inference.grid, stages: inference.stages, providers: config.providers, models, downloading: folder.downloading }, folder.downloading.length ? `first stage loaded; ready (still downloading ${folder.downloading.join(", ")})` : "models loaded; ready");
      // A later stage's weights that do not arrive intact: the run that needs them fails naming the file, and so does /ping from then on.
      folder.complete.catch((error: unknown) => {
        const reason = (error as Error).message;
        readiness = { state: "failed", reason };
        logEvent(RUNTIME_LOG_EVENTS.notReady, { reason, err: error, ...(error instanceof ModelFileError ? { file: error.file } : {}) }, `not ready: ${reason}`, "error");
      });
    } catch (error) {
      const reason = (error as Error).message;
      readiness = { state: "failed", reason };
      logEvent(RUNTIME_LOG_EVENTS.notReady, { reason, err: error, ...(error instanceof ModelFileError ? { file: error.file } : {}) }, `not ready: ${reason}`, "error");
      throw error;
    }
  })();
  ready.catch(() => undefined);

  async function invoke(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (readiness.state !== "ready") {
      send(response, 503, { error: readiness.state === "failed" ? `not ready: ${readiness.reason}` : "models are still loading" });
      return;
    }
    if (running) throw new BusyError(running.jobName);
    const { models, ready: inference } = readiness;
    const placeholder = { jobName: "(request being read)" } as ForecastRequest;
    running = placeholder;
    try {
      const forecastRequest = parseForecastRequest(await readBody(request), config.lanes);
      running = forecastRequest;
      const { jobName, runId, input, outputPrefix, cascadeSteps } = forecastRequest;
      logEvent(RUNTIME_LOG_EVENTS.runStarted, { jobName, runId, input, outputPrefix, cascadeSteps }, "invocation");
      const manifest: Manifest = await runForecast(
        { s3: client(), engine, grid: inference.grid, models, providers: config.providers, stepsInFlight: config.stepsInFlight, prefetchNextStage: config.prefetchNextStage, encodeThreads: config.encodeThreads, bitroundBits: config.bitroundBits, scratchDir: config.scratchDir, log, logEvent, signal: abort.signal,
          usage: { instance: { instanceType: config.instanceType, instanceCount: config.instanceCount }, containerStartedAt, modelsReadyAt } },
        forecastRequest,
      );
      send(response, 200, manifest);
    } finally {
      running = undefined;
    }
  }

  const server: Server = createServer((request, response) => {
    const route = `${request.method} ${request.url?.split("?")[0]}`;
    if (route === "GET /ping") {
      if (readiness.state === "ready") send(response, 200);
      else send(response, 503, readiness.state === "failed" ? `not ready: ${readiness.reason}` : "models are still loading");
      return;
    }
    if (route === "GET /execution-parameters") {
      send(response, 200, EXECUTION_PARAMETERS);
      return;
    }
    if (route === "POST /invocations") {
      invoke(request, response).catch((error: unknown) => {
        if (error instanceof BusyError) {
          send(response, 429, { error: error.message });
        } else if (error instanceof RequestError) {
          logEvent(RUNTIME_LOG_EVENTS.requestRejected, { field: error.field, fault: error.fault }, error.message, "warn");
          send(response, error.httpStatus, { error: error.message, field: error.field, fault: error.fault });
        } else if (error instanceof InputFault) {
          logEvent(RUNTIME_LOG_EVENTS.inputRejected, { file: error.file, fault: error.fault }, error.message, "warn");
          send(response, 400, { error: error.message, file: error.file, fault: error.fault });
        } else if (error instanceof S3Fault) {
          const { operation, location, hint, transient } = error;
          logEvent(RUNTIME_LOG_EVENTS.runFailed, { error: error.message, operation, bucket: location.bucket, key: location.key, transient, err: error.cause }, "invocation failed: S3", "error");
          send(response, error.httpStatus, { error: error.message, operation, bucket: location.bucket, key: location.key, hint, transient });
        } else {
          logEvent(RUNTIME_LOG_EVENTS.runFailed, { error: (error as Error).message, err: error }, "invocation failed", "error");
          send(response, 500, { error: (error as Error).message });
        }
      });
      return;
    }
    send(response, 404, { error: `no route ${route}; this container serves GET /ping, GET /execution-parameters and POST /invocations` });
  });
  // A long run keeps the invocation open for up to an hour (InvocationsTimeoutInSeconds ≤ 3600).
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  logEvent(RUNTIME_LOG_EVENTS.listening, { port }, "listening");

  return {
    port,
    ready,
    async shutdown() {
      abort.abort();
      await new Promise<void>((resolve) => {
        // Clients keep connections alive for keepAliveTimeout (65 s): close each one as soon as its
        // last response is sent, or `docker stop` would SIGKILL the container after its grace period.
        const closeIdle = setInterval(() => server.closeIdleConnections(), 50);
        server.close(() => {
          clearInterval(closeIdle);
          resolve();
        });
        server.closeIdleConnections();
      });
      await engine.close();
      s3?.destroy();
    },
  };
}
