/**
 * SQS on loopback: the AWS JSON 1.0 wire protocol that @aws-sdk/client-sqs speaks (POST /,
 * `X-Amz-Target: AmazonSQS.<Operation>`), in front of the in-memory queue model (sqs-model.ts), so the
 * real SDK client reaches it through AWS_ENDPOINT_URL_SQS. Operations: GetQueueUrl, SendMessage,
 * ReceiveMessage (returns at once; long polling is not modelled), DeleteMessage,
 * ChangeMessageVisibility, GetQueueAttributes. Queue URLs are `<endpoint>/<account>/<name>`.
 * No maintained SQS emulator runs in Node without Docker or Java (ElasticMQ, LocalStack), hence this.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { SqsError, SqsModel } from "./sqs-model";

export interface LocalSqs {
  endpoint: string;
  model: SqsModel;
  accountId: string;
  queueUrl(name: string): string;
  queueArn(name: string): string;
  /** Operations received, in order. */
  operations(): string[];
  stop(): Promise<void>;
}

export async function startLocalSqs(options: { model?: SqsModel; accountId?: string; region?: string } = {}): Promise<LocalSqs> {
  const model = options.model ?? new SqsModel();
  const accountId = options.accountId ?? "000000000000";
  const region = options.region ?? "cn-northwest-1";
  const partition = region.startsWith("cn-") ? "aws-cn" : "aws";
  const operations: string[] = [];
  let endpoint = "";
  const nameOf = (url: unknown): string => {
    if (typeof url !== "string" || url.length === 0) throw new SqsError("MissingParameter", "The request must contain the parameter QueueUrl.");
    const name = url.split("/").pop() ?? "";
    if (!model.names().includes(name)) throw new SqsError("QueueDoesNotExist", "The specified queue does not exist.");
    return name;
  };
  const handlers: Record<string, (b: Record<string, any>) => unknown> = {
    GetQueueUrl: (b) => {
      if (!model.names().includes(b.QueueName)) throw new SqsError("QueueDoesNotExist", "The specified queue does not exist.");
      return { QueueUrl: `${endpoint}/${accountId}/${b.QueueName}` };
    },
    SendMessage: (b) => {
      if (typeof b.MessageBody !== "string" || b.MessageBody.length === 0) throw new SqsError("MissingParameter", "The request must contain the parameter MessageBody.");
      const m = model.send(nameOf(b.QueueUrl), b.MessageBody, b.MessageAttributes ?? {}, b.DelaySeconds ?? 0);
      return { MessageId: m.messageId, MD5OfMessageBody: m.md5OfBody };
    },
    ReceiveMessage: (b) => {
      const max = b.MaxNumberOfMessages ?? 1;
      if (!Number.isInteger(max) || max < 1 || max > 10) throw new SqsError("InvalidParameterValue", `Value ${max} for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10.`);
      const got = model.receive(nameOf(b.QueueUrl), max, b.VisibilityTimeout);
      return {
        Messages: got.map((m) => ({
          MessageId: m.messageId,
          ReceiptHandle: m.receiptHandle,
          MD5OfBody: m.md5OfBody,
          Body: m.body,
          Attributes: m.attributes,
          ...(Object.keys(m.messageAttributes).length ? { MessageAttributes: m.messageAttributes } : {}),
        })),
      };
    },
    DeleteMessage: (b) => {
      model.delete(nameOf(b.QueueUrl), String(b.ReceiptHandle ?? ""));
      return {};
    },
    ChangeMessageVisibility: (b) => {
      model.changeVisibility(nameOf(b.QueueUrl), String(b.ReceiptHandle ?? ""), b.VisibilityTimeout);
      return {};
    },
    GetQueueAttributes: (b) => {
      const all = model.attributes(nameOf(b.QueueUrl));
      const names: string[] = b.AttributeNames ?? ["All"];
      return { Attributes: names.includes("All") ? all : Object.fromEntries(names.filter((n) => n in all).map((n) => [n, all[n]])) };
    },
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/x-amz-json-1.0", "x-amzn-requestid": randomUUID() });
        res.end(JSON.stringify(body));
      };
      try {
        const target = String(req.headers["x-amz-target"] ?? "");
        const operation = target.startsWith("AmazonSQS.") ? target.slice("AmazonSQS.".length) : target;
        operations.push(operation);
        const handler = handlers[operation];
        if (!handler) throw new SqsError("UnsupportedOperation", `${operation || "(no X-Amz-Target)"} is not implemented by the local SQS`);
        const text = await readBody(req);
        send(200, handler(text ? JSON.parse(text) : {}));
      } catch (error) {
        if (error instanceof SqsError) send(400, { __type: `com.amazonaws.sqs#${error.code}`, message: error.message });
        else send(500, { __type: "com.amazonaws.sqs#InternalError", message: String(error) });
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    model,
    accountId,
    queueUrl: (name) => `${endpoint}/${accountId}/${name}`,
    queueArn: (name) => `arn:${partition}:sqs:${region}:${accountId}:${name}`,
    operations: () => [...operations],
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
