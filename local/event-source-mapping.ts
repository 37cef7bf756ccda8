/**
 * Lambda's SQS event source mapping, emulated over the in-memory queue model (tools/sqs-model.ts), as
 * the Lambda developer guide describes it ("Using Lambda with Amazon SQS"): pollers receive batches
 * of up to `batchSize` messages, invoke the function with them (the event's Records carry
 * messageId, receiptHandle, body, attributes, eventSourceARN), at most `maximumConcurrency`
 * invocations at a time; with ReportBatchItemFailures the messages the function does not list in
 * `batchItemFailures` are deleted, the listed ones stay (visible again after their visibility
 * timeout); when the function throws, none is deleted. Batching windows are not modelled.
 */
import type { SqsEvent, SqsRecord } from "../trigger/handler";
import type { SqsModel } from "../tools/sqs-model";

export type SqsHandler = (event: SqsEvent, context: { awsRequestId: string }) => Promise<{ batchItemFailures: { itemIdentifier: string }[] } | void>;

export interface EventSourceMappingOptions {
  model: SqsModel;
  queue: string;
  queueArn: string;
  region: string;
  handler: SqsHandler;
  batchSize?: number;
  maximumConcurrency?: number;
  onError?: (error: unknown) => void;
}

export interface EventSourceMapping {
  /** Invokes the function until no message of the queue is visible; resolves with the invocations made. */
  drain(): Promise<number>;
  invocations(): number;
}

export function toSqsRecord(message: ReturnType<SqsModel["receive"]>[number], queueArn: string, region: string): SqsRecord {
  return {
    messageId: message.messageId,
    receiptHandle: message.receiptHandle!,
    body: message.body,
    attributes: message.attributes as SqsRecord["attributes"],
    messageAttributes: Object.fromEntries(Object.entries(message.messageAttributes).map(([k, v]) => [k, { stringValue: v.StringValue, dataType: v.DataType, stringListValues: [], binaryListValues: [] }])),
    md5OfBody: message.md5OfBody,
    eventSource: "aws:sqs",
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

export function eventSourceMapping(options: EventSourceMappingOptions): EventSourceMapping {
  const batchSize = options.batchSize ?? 10;
  const concurrency = options.maximumConcurrency ?? 2;
  let invocations = 0;
  const invokeOnce = async (): Promise<boolean> => {
    const batch = options.model.receive(options.queue, batchSize);
    if (batch.length === 0) return false;
    invocations++;
    const event: SqsEvent = { Records: batch.map((m) => toSqsRecord(m, options.queueArn, options.region)) };
    let keep = new Set(batch.map((m) => m.messageId));
    try {
      const result = await options.handler(event, { awsRequestId: `esm-${options.queue}-${invocations}` });
      keep = new Set((result?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (error) {
      options.onError?.(error);
    }
    for (const m of batch) if (!keep.has(m.messageId)) options.model.delete(options.queue, m.receiptHandle!);
    return true;
  };
  return {
    async drain() {
      const before = invocations;
      const worker = async () => {
        while (await invokeOnce());
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      return invocations - before;
    },
    invocations: () => invocations,
  };
}
