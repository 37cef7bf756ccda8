// Request/response messaging with a worker thread. Large typed arrays are transferred, not copied.
import { Worker, parentPort, type TransferListItem } from "node:worker_threads";
import { extname, join } from "node:path";
import { InputFault } from "./errors";

interface RpcRequest {
  id: number;
  method: string;
  args: unknown;
}
interface SerializedError {
  name: string;
  message: string;
  file?: string;
  fault?: string;
}
type RpcResponse = { id: number; result: unknown } | { id: number; error: SerializedError };

/** What a handler returns: the result and the buffers to transfer with it. */
export interface Reply<T> {
  result: T;
  transfer?: TransferListItem[];
}

export type Handlers = Record<string, (args: never) => Promise<Reply<unknown>>>;

function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const { file, fault } = error as Error & { file?: unknown; fault?: unknown };
    return {
      name: error.name,
      message: error.message,
      ...(typeof file === "string" && typeof fault === "string" ? { file, fault } : {}),
    };
  }
  return { name: "Error", message: String(error) };
}

function deserializeError(error: SerializedError): Error {
  // Input-file faults (the NetCDF module's InputFileError, or our own InputFault) stay recognisable as 400s.
  if (error.file !== undefined && error.fault !== undefined) return new InputFault(error.file, error.fault);
  const result = new Error(error.message);
  result.name = error.name;
  return result;
}

/** Inside a worker: answer calls with the given handlers, one at a time in arrival order. */
export function serveRpc(handlers: Handlers): void {
  const port = parentPort;
  if (!port) throw new Error("serveRpc must run inside a worker thread");
  let queue = Promise.resolve();
  port.on("message", (request: RpcRequest) => {
    queue = queue.then(async () => {
      const handler = handlers[request.method];
      try {
        if (!handler) throw new Error(`worker has no method ${request.method}`);
        const reply = await handler(request.args as never);
        port.postMessage({ id: request.id, result: reply.result } satisfies RpcResponse, reply.transfer ?? []);
      } catch (error) {
        port.postMessage({ id: request.id, error: serializeError(error) } satisfies RpcResponse);
      }
    });
  });
}

/**
 * Starts the worker module `name` that sits next to this file. Under tsx (tests, the local pipeline)
 * the sibling is a .ts file, which a worker can only load after registering tsx itself.
 */
function startWorker(name: string): Worker {
  const extension = extname(__filename);
  const file = join(__dirname, name + extension);
  if (extension !== ".ts") return new Worker(file);
  const tsx = require.resolve("tsx/cjs");
  return new Worker(`require(${JSON.stringify(tsx)}); require(${JSON.stringify(file)});`, { eval: true });
}

export class RpcWorker {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private failure: Error | undefined;

  constructor(readonly name: string) {
    this.worker = startWorker(name);
    this.worker.on("message", (response: RpcResponse) => {
      const waiter = this.pending.get(response.id);
      if (!waiter) return;
      this.pending.delete(response.id);
      if ("error" in response) waiter.reject(deserializeError(response.error));
      else waiter.resolve(response.result);
    });
    const failAll = (error: Error) => {
      this.failure = error;
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    };
    this.worker.on("error", (error) => failAll(new Error(`worker ${name} failed: ${error.message}`)));
    this.worker.on("exit", (code) => failAll(new Error(`worker ${name} exited (code ${code})`)));
  }

  call<T>(method: string, args: unknown, transfer: TransferListItem[] = []): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.worker.postMessage({ id, method, args } satisfies RpcRequest, transfer);
    });
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}
