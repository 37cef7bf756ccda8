/** `npm run runs -- replay`: dead-lettered runs back to the queue of their lane (a new message: its wait starts again). */
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { StackOutputs } from "./stack-outputs";

export async function replayDeadLetters(sqs: SQSClient, out: StackOutputs, o: { max?: number } = {}): Promise<{ operational: number; backfill: number }> {
  const moved = { operational: 0, backfill: 0 };
  const max = o.max ?? Infinity;
  // The receive hides each message for 60 s: messages already seen in this replay are not received twice.
  while (moved.operational + moved.backfill < max) {
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: out.deadLetterQueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60, MessageAttributeNames: ["All"], WaitTimeSeconds: 1 }));
    const messages = got.Messages ?? [];
    if (messages.length === 0) break;
    for (const m of messages) {
      const lane = m.MessageAttributes?.["fuxi-lane"]?.StringValue === "backfill" ? "backfill" : "operational";
      await sqs.send(new SendMessageCommand({ QueueUrl: lane === "backfill" ? out.backfillQueueUrl : out.operationalQueueUrl, MessageBody: m.Body! }));
      // Deleted only once the copy is queued: a crash in between leaves a duplicate, which the dispatcher ignores.
      await sqs.send(new DeleteMessageCommand({ QueueUrl: out.deadLetterQueueUrl, ReceiptHandle: m.ReceiptHandle! }));
      moved[lane]++;
    }
  }
  return moved;
}
