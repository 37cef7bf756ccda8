/**
 * The dispatcher's ports (trigger/ports.ts) in memory on a simulated clock, for `npm run bench:burst`
 * (hundreds of 15-minute jobs in seconds). They keep the semantics the dispatcher relies on and the
 * wire tests check against the real SDK clients: S3 conditional creates (`If-None-Match: *`, one
 * winner), SageMaker names unique forever, `ResourceLimitExceeded` beyond the account quota of
 * InProgress jobs, ListTransformJobs by status and name; the queues are tools/sqs-model.ts.
 */
import type { CreateTransformJobCommandInput } from "@aws-sdk/client-sagemaker";
import type { JobControl, QueueControl, RunStore } from "../trigger/ports";
import type { SqsModel } from "./sqs-model";

const awsError = (name: string, message: string, httpStatusCode: number) => Object.assign(new Error(message), { name, $fault: httpStatusCode >= 500 ? "server" : "client", $metadata: { httpStatusCode } });

export class MemoryStore implements RunStore {
  readonly objects = new Map<string, string>();
  /** PUTs per key (the request object must be written once). */
  readonly writes = new Map<string, number>();

  private put(key: string, value: unknown) {
    this.objects.set(key, JSON.stringify(value));
    this.writes.set(key, (this.writes.get(key) ?? 0) + 1);
  }
  async exists(key: string) {
    return this.objects.has(key);
  }
  async listRunFolder(folderKey: string) {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(folderKey)).sort();
    return { ncKeys: keys.filter((k) => !k.slice(folderKey.length).includes("/") && k.toLowerCase().endsWith(".nc")), objectCount: keys.length };
  }
  async putJson(key: string, value: unknown) {
    this.put(key, value);
  }
  async createJson(key: string, value: unknown) {
    if (this.objects.has(key)) return false;
    this.put(key, value);
    return true;
  }
  async listKeys(prefix: string, max: number) {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort().slice(0, max);
  }
  async getJson(key: string) {
    const text = this.objects.get(key);
    return text === undefined ? undefined : JSON.parse(text);
  }
  /** A user's upload (not counted as a dispatcher write). */
  upload(key: string, body = "") {
    this.objects.set(key, JSON.stringify(body));
  }
}

export interface MemoryJob {
  name: string;
  input: CreateTransformJobCommandInput;
  status: "InProgress" | "Completed";
  createdAt: number;
  endsAt: number;
}

export class MemoryJobs implements JobControl {
  readonly jobs = new Map<string, MemoryJob>();
  maxInProgress = 0;
  resourceLimitAnswers = 0;

  constructor(private readonly o: { now: () => number; quota: number; durationMs: (input: CreateTransformJobCommandInput) => number }) {}

  inProgress(): MemoryJob[] {
    return [...this.jobs.values()].filter((j) => j.status === "InProgress");
  }
  /** Ends the jobs whose time has come. */
  tick() {
    for (const job of this.jobs.values()) if (job.status === "InProgress" && job.endsAt <= this.o.now()) job.status = "Completed";
  }
  nextEnd(): number | undefined {
    const ends = this.inProgress().map((j) => j.endsAt);
    return ends.length ? Math.min(...ends) : undefined;
  }
  async listInProgress(prefix: string) {
    this.tick();
    return this.inProgress().map((j) => j.name).filter((n) => n.startsWith(`${prefix}-`));
  }
  async status(name: string) {
    this.tick();
    return this.jobs.get(name.toLowerCase())?.status;
  }
  async createdSince(prefix: string, since: Date) {
    return [...this.jobs.values()].filter((j) => j.name.startsWith(`${prefix}-`) && j.createdAt > since.getTime()).length;
  }
  async create(input: CreateTransformJobCommandInput) {
    this.tick();
    const name = input.TransformJobName!;
    if (this.jobs.has(name.toLowerCase())) throw awsError("ResourceInUse", `Job name must be unique within an AWS account and region, and a job with this name already exists`, 400);
    if (this.inProgress().length >= this.o.quota) {
      this.resourceLimitAnswers++;
      throw awsError("ResourceLimitExceeded", `The account-level service limit 'ml.g5.2xlarge for transform job usage' is ${this.o.quota} Instances`, 400);
    }
    const now = this.o.now();
    this.jobs.set(name.toLowerCase(), { name, input, status: "InProgress", createdAt: now, endsAt: now + this.o.durationMs(input) });
    this.maxInProgress = Math.max(this.maxInProgress, this.inProgress().length);
  }
}

const queueName = (url: string) => url.split("/").pop()!;

export function memoryQueue(model: SqsModel): QueueControl {
  return {
    async delay(url, handle, seconds) {
      model.changeVisibility(queueName(url), handle, seconds);
    },
    async deadLetter(url, message) {
      model.send(queueName(url), message.body, Object.fromEntries(Object.entries(message.attributes).map(([k, v]) => [k, { DataType: "String", StringValue: v }])));
    },
    async requeue(url, message, delaySeconds) {
      model.send(queueName(url), message.body, Object.fromEntries(Object.entries(message.attributes).map(([k, v]) => [k, { DataType: "String", StringValue: v }])), Math.min(900, delaySeconds));
    },
    async depth(url) {
      const a = model.attributes(queueName(url));
      return Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesNotVisible);
    },
  };
}
