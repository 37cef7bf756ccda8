/**
 * What the loopback SageMaker stand-ins (transform-runner.ts, async-endpoint-runner.ts) share of the
 * control plane's wire protocol, awsJson1_1: `POST /` with `X-Amz-Target: SageMaker.<Operation>` and a
 * JSON body; errors carry `__type` and `message`.
 */
import type { IncomingMessage } from "node:http";

/** An error as SageMaker answers it: its `__type` and HTTP status. */
export class ApiError extends Error {
  constructor(readonly type: string, message: string, readonly status = 400) {
    super(message);
  }
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/**
 * The request's X-Amz-Target and the operation it names ("" unless it is `SageMaker.<Operation>`);
 * appends the operation (else the raw target) to `operations`, the runner's record of every request.
 */
export function sageMakerTarget(req: IncomingMessage, operations: string[]): { target: string; operation: string } {
  const target = String(req.headers["x-amz-target"] ?? "");
  const operation = target.startsWith("SageMaker.") ? target.slice("SageMaker.".length) : "";
  operations.push(operation || target);
  return { target, operation };
}

/** An awsJson1_1 request body: {} when empty; what SageMaker answers when it is not JSON. */
export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readBody(req);
  try {
    return text.length === 0 ? {} : JSON.parse(text);
  } catch {
    throw new ApiError("SerializationException", "Start of structure or map found where not expected.");
  }
}
