/**
 * serving.mode "async": the dispatcher's JobControl (ports.ts) on a SageMaker asynchronous inference
 * endpoint, so admission, waiting, exactly-once and `_FAILED.json` stay the dispatcher's own rules.
 *
 * A "job" is one InvokeEndpointAsync of the run's request object with InferenceId = the job name (the
 * run's identity, ≤ 63 characters; InferenceId allows 64). SageMaker does not deduplicate inference
 * ids, so each invocation is claimed first by a record created with If-None-Match
 * (`<requests>_async/<jobName>.json`): only the claimant invokes. A claim whose invocation never
 * happened (the claimant failed between claim and call) is taken over after CLAIM_STALE_SECONDS; the
 * runtime's idempotency makes such a rare repeat cheap. State comes from S3: the endpoint writes
 * `<InferenceId>.out` into the results folder when the run is done and `<InferenceId>-error.out`
 * into the failures folder when it failed (docs/serving.md).
 */
import type { CreateTransformJobCommandInput } from "@aws-sdk/client-sagemaker";
import { InvokeEndpointAsyncCommand, type SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { asyncFailuresKey, asyncResultsKey, parseS3Uri } from "../runtime/src/contract";
import type { JobControl, RunStore } from "./ports";

/**
 * InvokeEndpointAsync's documented bounds (SageMaker API reference, InvokeEndpointAsync, request
 * headers X-Amzn-SageMaker-InvocationTimeoutSeconds and X-Amzn-SageMaker-RequestTTLSeconds): a request
 * may be processed 1-3600 s (default 900) and wait in the endpoint's queue 60-21600 s (default 21600).
 * The processing bound is the developer guide's "processing times up to one hour"; the stack's
 * fuxi:transform.invocationTimeoutSeconds (1-3600, config.ts) always lies within it.
 */
export const INVOKE_ENDPOINT_ASYNC_LIMITS = {
  invocationTimeoutSeconds: { min: 1, max: 3600, default: 900 },
  requestTtlSeconds: { min: 60, max: 21_600, default: 21_600 },
} as const;
/** The most a request may wait on the endpoint (RequestTTLSeconds' maximum). */
export const ASYNC_REQUEST_TTL_SECONDS = INVOKE_ENDPOINT_ASYNC_LIMITS.requestTtlSeconds.max;
export const CLAIM_STALE_SECONDS = 120;
/** Records, results and failures read per listing (one page). */
const LISTING_PAGE = 1000;

export const invocationRecordsPrefix = (requestsPrefix: string): string => `${requestsPrefix}_async/`;
export const invocationRecordKey = (requestsPrefix: string, jobName: string): string => `${invocationRecordsPrefix(requestsPrefix)}${jobName}.json`;
export const resultKey = (outputPrefix: string, inferenceId: string): string => `${asyncResultsKey(outputPrefix)}${inferenceId}.out`;
export const failureKey = (outputPrefix: string, inferenceId: string): string => `${asyncFailuresKey(outputPrefix)}${inferenceId}-error.out`;

/** What the record holds: the claim, then the invocation's answer. */
export interface InvocationRecord {
  jobName: string;
  claimedAt: string;
  invokedAt?: string;
  inferenceId?: string;
  inputLocation?: string;
  outputLocation?: string;
  failureLocation?: string;
}

/** A second start of the same job: what SageMaker answers for a transform job name in use. */
class InvocationExists extends Error {
  override name = "ResourceInUse";
}

export interface AsyncJobControlOptions {
  runtime: SageMakerRuntimeClient;
  store: RunStore;
  endpointName: string;
  requestsPrefix: string;
  outputPrefix: string;
  now: () => Date;
}

export function asyncEndpointJobControl(o: AsyncJobControlOptions): JobControl {
  const recordOf = async (jobName: string) => (await o.store.getJson(invocationRecordKey(o.requestsPrefix, jobName))) as InvocationRecord | undefined;
  const stale = (r: InvocationRecord) => o.now().getTime() - Date.parse(r.claimedAt) > CLAIM_STALE_SECONDS * 1000;
  // Keys of the S3 objects the endpoint writes are read back from the record: where SageMaker said it would write.
  const keyOf = (uri: string | undefined, fallback: string) => (uri ? parseS3Uri(uri)?.key ?? fallback : fallback);

  async function status(jobName: string): Promise<string | undefined> {
    const record = await recordOf(jobName);
    if (!record) return undefined;
    if (!record.invokedAt) return stale(record) ? undefined : "InProgress";
    const id = record.inferenceId ?? jobName;
    if (await o.store.exists(keyOf(record.outputLocation, resultKey(o.outputPrefix, id)))) return "Completed";
    if (await o.store.exists(keyOf(record.failureLocation, failureKey(o.outputPrefix, id)))) return "Failed";
    return "InProgress";
  }

  /** This stack's records whose job name has the prefix, as job names. */
  async function recordNames(jobNamePrefix: string): Promise<string[]> {
    const prefix = invocationRecordsPrefix(o.requestsPrefix);
    return (await o.store.listKeys(prefix, LISTING_PAGE))
      .map((key) => key.slice(prefix.length).replace(/\.json$/, ""))
      .filter((name) => name.toLowerCase().startsWith(`${jobNamePrefix.toLowerCase()}-`));
  }

  return {
    async listInProgress(jobNamePrefix) {
      const [names, results, failures] = await Promise.all([
        recordNames(jobNamePrefix),
        o.store.listKeys(asyncResultsKey(o.outputPrefix), LISTING_PAGE),
        o.store.listKeys(asyncFailuresKey(o.outputPrefix), LISTING_PAGE),
      ]);
      const ended = new Set([...results, ...failures]);
      // Only records with neither answer in the listings are read (the listings are one page each).
      const open = names.filter((name) => !ended.has(resultKey(o.outputPrefix, name)) && !ended.has(failureKey(o.outputPrefix, name)));
      const states = await Promise.all(open.map(async (name) => ({ name, state: await status(name) })));
      return states.filter((s) => s.state === "InProgress").map((s) => s.name);
    },
    status,
    async createdSince(jobNamePrefix, since) {
      const records = await Promise.all((await recordNames(jobNamePrefix)).map(recordOf));
      return records.filter((r) => r?.invokedAt && Date.parse(r.invokedAt) > since.getTime()).length;
    },
    async create(input: CreateTransformJobCommandInput) {
      const jobName = input.TransformJobName!;
      const key = invocationRecordKey(o.requestsPrefix, jobName);
      const claim: InvocationRecord = { jobName, claimedAt: o.now().toISOString() };
      if (!(await o.store.createJson(key, claim))) {
        const existing = await recordOf(jobName);
        if (existing?.invokedAt || (existing && !stale(existing))) throw new InvocationExists(`async invocation ${jobName} already exists`);
        // A stale claim that never invoked: take it over.
        await o.store.putJson(key, claim);
      }
      const inputLocation = input.TransformInput!.DataSource!.S3DataSource!.S3Uri!;
      const answer = await o.runtime.send(new InvokeEndpointAsyncCommand({
        EndpointName: o.endpointName,
        InputLocation: inputLocation,
        InferenceId: jobName,
        ContentType: input.TransformInput!.ContentType ?? "application/json",
        Accept: input.TransformOutput?.Accept ?? "application/json",
        // InvokeEndpointAsync's default is 900 s: a whole cascade needs the stack's timeout (≤ 3600 s, the API's maximum).
        InvocationTimeoutSeconds: input.ModelClientConfig?.InvocationsTimeoutInSeconds,
        RequestTTLSeconds: ASYNC_REQUEST_TTL_SECONDS,
      }));
      const record: InvocationRecord = {
        ...claim,
        invokedAt: o.now().toISOString(),
        inferenceId: answer.InferenceId ?? jobName,
        inputLocation,
        outputLocation: answer.OutputLocation,
        failureLocation: answer.FailureLocation,
      };
      await o.store.putJson(key, record);
    },
  };
}
