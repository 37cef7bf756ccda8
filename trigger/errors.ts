import { isServerError, isThrottlingError, isTransientError } from "@smithy/core/retry";

interface AwsErrorLike {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** SageMaker reports a second CreateTransformJob with the same name as ResourceInUse or as a ValidationException. */
export function isAlreadyExistsError(error: unknown): boolean {
  const e = error as AwsErrorLike;
  if (e?.name === "ResourceInUse") return true;
  return e?.name === "ValidationException" && /already exists|must be unique/i.test(e.message ?? "");
}

/**
 * True when retrying later may succeed: throttling, 5xx, timeouts, network faults, a full account quota
 * (ResourceLimitExceeded: jobs finish and free it), and anything that is not an AWS service response
 * (a bug or a credentials fault should land in the failure queue, not vanish). The SDK has already
 * retried these a few times before the error reaches us.
 */
export function isTransientAwsError(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return true;
  const e = error as Parameters<typeof isTransientError>[0];
  const status = e.$metadata?.httpStatusCode;
  if (status === undefined) return true;
  if (e.name === "ResourceLimitExceeded") return true;
  return isThrottlingError(e) || isTransientError(e) || isServerError(e) || status >= 500 || status === 408;
}

export function describeError(error: unknown): { name: string; message: string; httpStatusCode?: number } {
  const e = error as AwsErrorLike;
  return {
    name: e?.name ?? "Error",
    message: e?.message ?? String(error),
    ...(e?.$metadata?.httpStatusCode !== undefined ? { httpStatusCode: e.$metadata.httpStatusCode } : {}),
  };
}
