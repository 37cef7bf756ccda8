/**
 * A standard SQS queue in memory, on an injectable clock, keeping the documented semantics the run
 * queue relies on (SQS Developer Guide: "Amazon SQS visibility timeout", "Using dead-letter queues";
 * API reference: ReceiveMessage, ChangeMessageVisibility, GetQueueAttributes):
 * - a received message is invisible for the visibility timeout, then visible again with a new
 *   receipt handle; ChangeMessageVisibility resets the timeout from now (0 makes it visible);
 * - ApproximateReceiveCount counts receives; a receive that would exceed the redrive policy's
 *   maxReceiveCount moves the message to the dead-letter queue instead;
 * - DeleteMessage with a stale receipt handle of a message that is gone succeeds silently;
 * - ApproximateNumberOfMessages (visible) and ...NotVisible (in flight) (the age of the oldest message
 *   is a CloudWatch metric, not a queue attribute).
 * - SendMessage DelaySeconds (0-900) keeps a new message invisible that long.
 * Not modelled: delivery duplicates and out-of-order delivery (at-least-once: tests inject
 * duplicates themselves), queue-level delays, FIFO. SQS cannot run here; this is its stand-in.
 */
import { createHash, randomUUID } from "node:crypto";

export interface SqsMessage {
  messageId: string;
  body: string;
  md5OfBody: string;
  attributes: Record<string, string>;
  messageAttributes: Record<string, { DataType: string; StringValue?: string }>;
  sentAt: number;
  firstReceivedAt?: number;
  receiveCount: number;
  visibleAt: number;
  receiptHandle?: string;
}

export interface QueueSettings {
  name: string;
  visibilityTimeoutSeconds?: number;
  /** Redrive policy. */
  deadLetter?: { queue: string; maxReceiveCount: number };
}

export class SqsError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = code;
  }
}

export class SqsModel {
  private readonly queues = new Map<string, { settings: Required<Omit<QueueSettings, "deadLetter">> & Pick<QueueSettings, "deadLetter">; messages: SqsMessage[] }>();
  /** Messages ever moved by a redrive policy, per dead-letter queue. */
  redriven = 0;

  constructor(private readonly now: () => number = Date.now) {}

  createQueue(settings: QueueSettings): void {
    this.queues.set(settings.name, { settings: { visibilityTimeoutSeconds: 30, ...settings }, messages: [] });
  }

  names(): string[] {
    return [...this.queues.keys()];
  }

  private queue(name: string) {
    const q = this.queues.get(name);
    if (!q) throw new SqsError("QueueDoesNotExist", `The specified queue ${name} does not exist.`);
    return q;
  }

  send(queue: string, body: string, messageAttributes: SqsMessage["messageAttributes"] = {}, delaySeconds = 0): SqsMessage {
    const q = this.queue(queue);
    const now = this.now();
    if (!Number.isInteger(delaySeconds) || delaySeconds < 0 || delaySeconds > 900) throw new SqsError("InvalidParameterValue", `Value ${delaySeconds} for parameter DelaySeconds is invalid. Reason: Must be between 0 and 900.`);
    const message: SqsMessage = { messageId: randomUUID(), body, md5OfBody: createHash("md5").update(body).digest("hex"), attributes: {}, messageAttributes, sentAt: now, receiveCount: 0, visibleAt: now + delaySeconds * 1000 };
    q.messages.push(message);
    return message;
  }

  receive(queue: string, max = 1, visibilityTimeoutSeconds?: number): SqsMessage[] {
    const q = this.queue(queue);
    const now = this.now();
    const got: SqsMessage[] = [];
    for (const message of [...q.messages]) {
      if (got.length >= max) break;
      if (message.visibleAt > now) continue;
      if (q.settings.deadLetter && message.receiveCount >= q.settings.deadLetter.maxReceiveCount) {
        q.messages.splice(q.messages.indexOf(message), 1);
        const dlq = this.queue(q.settings.deadLetter.queue);
        dlq.messages.push({ ...message, visibleAt: now, receiptHandle: undefined, sentAt: message.sentAt });
        this.redriven++;
        continue;
      }
      message.receiveCount++;
      message.firstReceivedAt ??= now;
      message.visibleAt = now + (visibilityTimeoutSeconds ?? q.settings.visibilityTimeoutSeconds) * 1000;
      message.receiptHandle = `${message.messageId}#${message.receiveCount}#${randomUUID()}`;
      message.attributes = {
        ApproximateReceiveCount: String(message.receiveCount),
        SentTimestamp: String(message.sentAt),
        ApproximateFirstReceiveTimestamp: String(message.firstReceivedAt),
        SenderId: "AIDALOCALSTANDIN",
      };
      got.push({ ...message, attributes: { ...message.attributes } });
    }
    return got;
  }

  private byHandle(queue: string, receiptHandle: string): SqsMessage | undefined {
    return this.queue(queue).messages.find((m) => m.receiptHandle === receiptHandle);
  }

  delete(queue: string, receiptHandle: string): void {
    const q = this.queue(queue);
    const index = q.messages.findIndex((m) => m.receiptHandle === receiptHandle);
    if (index >= 0) q.messages.splice(index, 1);
    else if (!/#\d+#/.test(receiptHandle)) throw new SqsError("ReceiptHandleIsInvalid", `The input receipt handle "${receiptHandle}" is not a valid receipt handle.`);
  }

  changeVisibility(queue: string, receiptHandle: string, seconds: number): void {
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > 43200) throw new SqsError("InvalidParameterValue", `Value ${seconds} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200.`);
    const message = this.byHandle(queue, receiptHandle);
    if (!message || message.visibleAt <= this.now()) throw new SqsError("MessageNotInflight", "Message does not exist or is not available for visibility timeout change.");
    message.visibleAt = this.now() + seconds * 1000;
  }

  attributes(queue: string): Record<string, string> {
    const q = this.queue(queue);
    const now = this.now();
    const visible = q.messages.filter((m) => m.visibleAt <= now).length;
    return {
      ApproximateNumberOfMessages: String(visible),
      ApproximateNumberOfMessagesNotVisible: String(q.messages.length - visible),
      ApproximateNumberOfMessagesDelayed: "0",
      VisibilityTimeout: String(q.settings.visibilityTimeoutSeconds),
      ...(q.settings.deadLetter ? { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: q.settings.deadLetter.queue, maxReceiveCount: q.settings.deadLetter.maxReceiveCount }) } : {}),
    };
  }

  /** Every message of a queue (tests and the benchmark). */
  peek(queue: string): readonly SqsMessage[] {
    return this.queue(queue).messages;
  }

  /** When the next invisible message of any queue becomes visible (for a simulated clock). */
  nextVisibleAt(): number | undefined {
    const now = this.now();
    let next: number | undefined;
    for (const q of this.queues.values()) for (const m of q.messages) if (m.visibleAt > now && (next === undefined || m.visibleAt < next)) next = m.visibleAt;
    return next;
  }
}
