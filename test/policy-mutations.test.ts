import { strict as assert } from "node:assert";
import { fromRecorded, runPack, type AnalyzedResource } from "../policy/harness";
import { policies } from "../policy/rules";
import { runProgramUnderMocks, wellKeptBucket, type ExistingBucket, type MockRunOptions } from "../tools/mock-program";
import { ASYNC_STACK } from "./support/async-stack";

/**
 * Mutation suite: each planted fault is applied to the real program's resources
 * (index.ts run under mocks with Pulumi.dev.yaml, then one resource edited, as a
 * careless change to a component would), or to its config; the whole pack runs
 * and the named rule must report it. A fault nobody catches fails the test, and
 * every policy of the pack must be the catcher of at least one fault.
 */

type Doc = { Version?: string; Statement: Record<string, any>[] };
type Mutation = (stack: Stack) => void;
interface Fault {
  fault: string;
  caughtBy: string;
  mutate?: Mutation;
  /** A fault in the config or the account: the program runs again with these options. */
  run?: Partial<MockRunOptions>;
  /** Mutates the async-mode program (test/stacks/async.yaml) instead of dev. */
  onAsyncStack?: true;
}

class Stack {
  constructor(public resources: AnalyzedResource[]) {}

  find(type: string, name: string): AnalyzedResource {
    const found = this.resources.filter((r) => r.type === type && r.name === name);
    assert.equal(found.length, 1, `the program has no single ${type} "${name}" (found ${found.length}); update the mutation table`);
    return found[0]!;
  }

  /** Edits inputs (what resource rules see) and state (what stack rules see) alike. */
  edit(type: string, name: string, change: (props: Record<string, any>) => void): void {
    const r = this.find(type, name);
    change(r.props);
    if (r.outputs) change(r.outputs);
  }

  /** Edits a JSON policy document held in `prop`. */
  doc(type: string, name: string, prop: string, change: (doc: Doc) => void): void {
    this.edit(type, name, (p) => {
      const doc = typeof p[prop] === "string" ? JSON.parse(p[prop]) : p[prop];
      change(doc);
      p[prop] = JSON.stringify(doc);
    });
  }

  remove(type: string, name: string): void {
    const r = this.find(type, name);
    this.resources = this.resources.filter((x) => x !== r);
  }

  add(r: AnalyzedResource): void {
    this.resources.push(r);
  }
}

const ROLE = "aws:iam/role:Role";
const ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration";
const SCALABLE_TARGET = "aws:appautoscaling/target:Target";
const ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy";
const TRIGGER_POLICY = (s: Stack, change: (doc: Doc) => void) => s.doc(ROLE_POLICY, "trigger-role-policy", "policy", change);
const statement = (doc: Doc, sid: string) => {
  const st = doc.Statement.find((x) => x.Sid === sid);
  assert.ok(st, `no statement ${sid}`);
  return st;
};
const tlsDenyRemoved = (doc: Doc) => {
  doc.Statement = doc.Statement.filter((x) => x.Sid !== "DenyInsecureTransport");
};

const BUCKET = "team-fuxi-data";
const adopted = (change: (b: ExistingBucket) => void): Partial<MockRunOptions> => {
  const b = wellKeptBucket(BUCKET);
  change(b);
  return { config: { "fuxi:dataBucket": { existingName: BUCKET } }, existingBuckets: { [BUCKET]: b } };
};

const FAULTS: Fault[] = [
  // The planted faults of the review (issue #12).
  { fault: "partial action wildcard s3:Get* in the trigger role", caughtBy: "iam-no-wildcard-actions", mutate: (s) => TRIGGER_POLICY(s, (d) => (statement(d, "HeadRequests").Action = ["s3:Get*"])) },
  { fault: "partial action wildcard sagemaker:*Transform*", caughtBy: "iam-no-wildcard-actions", mutate: (s) => TRIGGER_POLICY(s, (d) => (statement(d, "StartTransformJobsOnTheModel").Action = ["sagemaker:*Transform*"])) },
  { fault: "resource arn:<partition>:s3:::* in the SageMaker role", caughtBy: "iam-wildcard-resource-allowlist", mutate: (s) => s.doc(ROLE_POLICY, "sagemaker-policy", "policy", (d) => (statement(d, "ReadModelArtifacts").Resource = "arn:aws-cn:s3:::*")) },
  { fault: "transform jobs of any name (transform-job/*)", caughtBy: "iam-wildcard-resource-allowlist", mutate: (s) => TRIGGER_POLICY(s, (d) => (statement(d, "StartTransformJobsOnTheModel").Resource = "arn:aws-cn:sagemaker:cn-northwest-1:123456789012:transform-job/*")) },
  {
    fault: "the trigger may PutObject on the whole bucket (it could write inputs and re-trigger runs)",
    caughtBy: "iam-s3-writes-scoped",
    mutate: (s) => TRIGGER_POLICY(s, (d) => {
      const st = statement(d, "WriteRequestsAndFailureMarkers");
      st.Resource = [String(st.Resource[0]).replace(/\/requests\/\*$/, "/*")];
    }),
  },
  { fault: 'trust policy Principal {"AWS": "*"}', caughtBy: "iam-trust-policy-not-public", mutate: (s) => s.doc(ROLE, "trigger-role", "assumeRolePolicy", (d) => (d.Statement[0]!.Principal = { AWS: "*" })) },
  {
    fault: "a public Allow statement in the bucket policy",
    caughtBy: "resource-policy-not-public",
    mutate: (s) => s.doc("aws:s3/bucketPolicy:BucketPolicy", "data-tls-only", "policy", (d) => d.Statement.push({ Sid: "Public", Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: "arn:aws-cn:s3:::x/*" })),
  },
  { fault: "PowerUserAccess on the trigger role", caughtBy: "iam-no-broad-managed-policy", mutate: (s) => s.edit(ROLE, "trigger-role", (p) => (p.managedPolicyArns = ["arn:aws-cn:iam::aws:policy/PowerUserAccess"])) },
  {
    fault: "PowerUserAccess attached to the trigger role by an attachment",
    caughtBy: "iam-no-broad-managed-policy",
    mutate: (s) => s.add({ type: "aws:iam/rolePolicyAttachment:RolePolicyAttachment", name: "power", urn: "urn:pulumi:dev::fuxi-sagemaker::aws:iam/rolePolicyAttachment:RolePolicyAttachment::power", props: { role: "fuxi-dev-trigger", policyArn: "arn:aws-cn:iam::aws:policy/PowerUserAccess" } }),
  },
  { fault: "the dead-letter queue without encryption at rest", caughtBy: "sqs-queue-encrypted", mutate: (s) => s.edit("aws:sqs/queue:Queue", "trigger-queues-dlq", (p) => (p.sqsManagedSseEnabled = false)) },
  { fault: "the alert topic without encryption at rest", caughtBy: "sns-topic-encrypted", mutate: (s) => s.edit("aws:sns/topic:Topic", "alerts-topic", (p) => delete p.kmsMasterKeyId) },
  { fault: "the run queue's policy without its TLS-only statement", caughtBy: "sqs-sns-tls-only", mutate: (s) => s.doc("aws:sqs/queuePolicy:QueuePolicy", "trigger-queues-operational-policy", "policy", tlsDenyRemoved) },
  { fault: "the topic policy without its TLS-only statement", caughtBy: "sqs-sns-tls-only", mutate: (s) => s.doc("aws:sns/topicPolicy:TopicPolicy", "alerts-topic-policy", "policy", tlsDenyRemoved) },
  { fault: "a queue with no access policy at all", caughtBy: "sqs-sns-policy-present", mutate: (s) => s.remove("aws:sqs/queuePolicy:QueuePolicy", "trigger-queues-dlq-policy") },
  { fault: "a topic with no access policy at all", caughtBy: "sqs-sns-policy-present", mutate: (s) => s.remove("aws:sns/topicPolicy:TopicPolicy", "alerts-topic-policy") },
  { fault: "an adopted bucket whose policy has no TLS-only statement", caughtBy: "s3-bucket-companions", run: adopted((b) => (b.policy = JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Deny", Principal: "*", Action: "s3:DeleteBucket", Resource: `arn:aws-cn:s3:::${BUCKET}` }] }))) },
  { fault: "an adopted bucket with versioning suspended", caughtBy: "s3-bucket-companions", run: adopted((b) => (b.versioning = { versioningConfiguration: { status: "Suspended" } })) },
  { fault: "an adopted bucket that aborts no multipart uploads", caughtBy: "s3-bucket-companions", run: adopted((b) => (b.lifecycle = { rules: [{ id: "old", status: "Enabled", filter: { prefix: "tmp/" }, expiration: { days: 1 } }] })) },
  { fault: "an adopted bucket with a public access block switched off", caughtBy: "s3-bucket-companions", run: adopted((b) => (b.publicAccessBlock = { ...b.publicAccessBlock, restrictPublicBuckets: false })) },

  // Each rule's own fault.
  { fault: "bucket encryption without an algorithm", caughtBy: "s3-bucket-encryption", mutate: (s) => s.edit("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "data-sse", (p) => (p.rules = [{ bucketKeyEnabled: true }])) },
  { fault: "public access block with ignorePublicAcls off", caughtBy: "s3-bucket-public-access-block", mutate: (s) => s.edit("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "data-public-access", (p) => (p.ignorePublicAcls = false)) },
  { fault: "bucket policy without the TLS-only deny", caughtBy: "s3-bucket-tls-only", mutate: (s) => s.doc("aws:s3/bucketPolicy:BucketPolicy", "data-tls-only", "policy", (d) => (d.Statement[0]!.Condition = {})) },
  { fault: "bucket versioning suspended", caughtBy: "s3-bucket-versioning", mutate: (s) => s.edit("aws:s3/bucketVersioning:BucketVersioning", "data-versioning", (p) => (p.versioningConfiguration = { status: "Suspended" })) },
  { fault: "lifecycle without the multipart abort", caughtBy: "s3-bucket-abort-incomplete-multipart", mutate: (s) => s.edit("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "data-lifecycle", (p) => (p.rules = p.rules.filter((r: any) => !r.abortIncompleteMultipartUpload))) },
  { fault: "a bucket without its public access block", caughtBy: "s3-bucket-companions", mutate: (s) => s.remove("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "data-public-access") },
  { fault: "Allow with NotAction", caughtBy: "iam-no-wildcard-actions", mutate: (s) => TRIGGER_POLICY(s, (d) => { const st = statement(d, "HeadRequests"); delete st.Action; st.NotAction = ["iam:*"]; }) },
  { fault: "Allow with NotResource", caughtBy: "iam-wildcard-resource-allowlist", mutate: (s) => TRIGGER_POLICY(s, (d) => { const st = statement(d, "HeadRequests"); st.NotResource = st.Resource; delete st.Resource; }) },
  { fault: "iam:PassRole without iam:PassedToService", caughtBy: "iam-passrole-requires-service-condition", mutate: (s) => TRIGGER_POLICY(s, (d) => d.Statement.push({ Sid: "Pass", Effect: "Allow", Action: "iam:PassRole", Resource: "arn:aws-cn:iam::123456789012:role/fuxi-dev-sagemaker" })) },
  { fault: "mutable ECR tags", caughtBy: "ecr-immutable-tags", mutate: (s) => s.edit("aws:ecr/repository:Repository", "runtime-repo", (p) => (p.imageTagMutability = "MUTABLE")) },
  { fault: "ECR scan on push off", caughtBy: "ecr-scan-on-push", mutate: (s) => s.edit("aws:ecr/repository:Repository", "runtime-repo", (p) => (p.imageScanningConfiguration = { scanOnPush: false })) },
  { fault: "ECR repository without a lifecycle policy", caughtBy: "ecr-lifecycle-policy", mutate: (s) => s.remove("aws:ecr/lifecyclePolicy:LifecyclePolicy", "runtime-lifecycle") },
  { fault: "a deprecated Lambda runtime", caughtBy: "lambda-supported-runtime", mutate: (s) => s.edit("aws:lambda/function:Function", "trigger-function", (p) => (p.runtime = "nodejs18.x")) },
  { fault: "no reserved concurrency", caughtBy: "lambda-reserved-concurrency", mutate: (s) => s.edit("aws:lambda/function:Function", "trigger-function", (p) => delete p.reservedConcurrentExecutions) },
  { fault: "a run queue that never redrives to the dead-letter queue", caughtBy: "lambda-failure-destination", mutate: (s) => s.edit("aws:sqs/queue:Queue", "trigger-queues-backfill", (p) => delete p.redrivePolicy) },
  { fault: "the function's log group not in the stack", caughtBy: "lambda-log-retention", mutate: (s) => s.remove("aws:cloudwatch/logGroup:LogGroup", "trigger-logs") },
  { fault: "a production stack that keeps every forecast forever (no output retention)", caughtBy: "s3-output-retention-on-production", run: { stack: "prod", config: { "fuxi:dataBucket": { protect: true } } } },
  { fault: "a log group without retention", caughtBy: "log-group-retention", mutate: (s) => s.edit("aws:cloudwatch/logGroup:LogGroup", "trigger-logs", (p) => delete p.retentionInDays) },
  {
    // The trigger is fed by SQS now; the rule guards against wiring S3 straight to a function again.
    fault: "S3 may invoke a function from any account",
    caughtBy: "lambda-s3-permission-scoped",
    mutate: (s) => s.add({ type: "aws:lambda/permission:Permission", name: "s3-invoke", urn: "urn:pulumi:dev::fuxi-sagemaker::aws:lambda/permission:Permission::s3-invoke", props: { action: "lambda:InvokeFunction", function: "fuxi-dev-trigger", principal: "s3.amazonaws.com.cn", sourceArn: "arn:aws-cn:s3:::fuxi-dev-data" } }),
  },
  { fault: "the model image by tag", caughtBy: "sagemaker-image-by-digest", mutate: (s) => s.edit("aws:sagemaker/model:Model", "fuxi-dev-model", (p) => (p.primaryContainer = { ...p.primaryContainer, image: "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/fuxi-dev-runtime:latest" })) },
  { fault: "transform jobs on a CPU instance", caughtBy: "sagemaker-transform-gpu-instance", mutate: (s) => s.edit("aws:lambda/function:Function", "trigger-function", (p) => (p.environment = { variables: { ...p.environment.variables, TRANSFORM_INSTANCE_TYPE: "ml.c5.xlarge" } })) },
  {
    fault: "the model under an outside role",
    caughtBy: "sagemaker-execution-role-not-admin",
    mutate: (s) => {
      s.edit("aws:sagemaker/model:Model", "fuxi-dev-model", (p) => (p.executionRoleArn = "arn:aws-cn:iam::123456789012:role/SomeAdmin"));
      delete s.find("aws:sagemaker/model:Model", "fuxi-dev-model").propertyDependencies!.executionRoleArn;
    },
  },
  {
    fault: "the SageMaker role granted iam:* on everything",
    caughtBy: "sagemaker-execution-role-not-admin",
    mutate: (s) => s.doc(ROLE_POLICY, "sagemaker-policy", "policy", (d) => d.Statement.push({ Sid: "Admin", Effect: "Allow", Action: "iam:*", Resource: "*" })),
  },
  // The async serving mode (test/stacks/async.yaml).
  { fault: "an endpoint on an instance without instance storage and no volume key", caughtBy: "sagemaker-endpoint-volume-encrypted", onAsyncStack: true, mutate: (s) => s.edit(ENDPOINT_CONFIG, "async-config", (p) => (p.productionVariants[0].instanceType = "ml.p3.2xlarge")) },
  { fault: "failed async invocations published to no topic", caughtBy: "sagemaker-async-failures-alert", onAsyncStack: true, mutate: (s) => s.edit(ENDPOINT_CONFIG, "async-config", (p) => delete p.asyncInferenceConfig.outputConfig.notificationConfig.errorTopic) },
  { fault: "an async endpoint without a failure path", caughtBy: "sagemaker-async-failures-alert", onAsyncStack: true, mutate: (s) => s.edit(ENDPOINT_CONFIG, "async-config", (p) => delete p.asyncInferenceConfig.outputConfig.s3FailurePath) },
  { fault: "four forecasts at once on one endpoint instance", caughtBy: "sagemaker-async-failures-alert", onAsyncStack: true, mutate: (s) => s.edit(ENDPOINT_CONFIG, "async-config", (p) => (p.asyncInferenceConfig.clientConfig = { maxConcurrentInvocationsPerInstance: 4 })) },
  {
    fault: "async results written under the input prefix (they would re-trigger runs)",
    caughtBy: "sagemaker-async-output-in-data-bucket",
    onAsyncStack: true,
    mutate: (s) => s.edit(ENDPOINT_CONFIG, "async-config", (p) => (p.asyncInferenceConfig.outputConfig.s3OutputPath = p.asyncInferenceConfig.outputConfig.s3OutputPath.replace("/output/", "/input/"))),
  },
  { fault: "async failures written to another bucket", caughtBy: "sagemaker-async-output-in-data-bucket", onAsyncStack: true, mutate: (s) => s.edit(ENDPOINT_CONFIG, "async-config", (p) => (p.asyncInferenceConfig.outputConfig.s3FailurePath = "s3://someone-elses-bucket/output/_async/failures/")) },
  { fault: "endpoint autoscaling above the dispatcher's cap (3 > MAX_CONCURRENT_JOBS 2)", caughtBy: "endpoint-autoscaling-within-cap", onAsyncStack: true, mutate: (s) => s.edit(SCALABLE_TARGET, "async-scaling-target", (p) => (p.maxCapacity = 3)) },
  { fault: "endpoint autoscaling above the pack's maxEndpointInstances", caughtBy: "endpoint-autoscaling-within-cap", onAsyncStack: true, mutate: (s) => s.edit(SCALABLE_TARGET, "async-scaling-target", (p) => (p.maxCapacity = 8)) },
  { fault: "the dispatcher may invoke any endpoint (endpoint/*)", caughtBy: "iam-wildcard-resource-allowlist", onAsyncStack: true, mutate: (s) => TRIGGER_POLICY(s, (d) => (statement(d, "InvokeOnlyThisEndpoint").Resource = "arn:aws-cn:sagemaker:cn-northwest-1:123456789012:endpoint/*")) },
  { fault: "an endpoint that never scales to zero", caughtBy: "endpoint-autoscaling-within-cap", onAsyncStack: true, mutate: (s) => s.edit(SCALABLE_TARGET, "async-scaling-target", (p) => (p.minCapacity = 1)) },
  { fault: "a resource without the required tags", caughtBy: "required-tags", mutate: (s) => s.edit("aws:sqs/queue:Queue", "trigger-queues-operational", (p) => (p.tags = {})) },
];

describe("policy pack mutation suite: planted faults in the real program", function () {
  this.timeout(300_000);
  let baseline: AnalyzedResource[];
  let asyncBaseline: AnalyzedResource[];

  before(async () => {
    [baseline, asyncBaseline] = (await Promise.all([runProgramUnderMocks({ stack: "dev" }), runProgramUnderMocks(ASYNC_STACK)])).map((r) => fromRecorded(r.resources));
  });

  it("the unmutated program passes the pack (so each catch below is the fault's)", async () => {
    const { violations } = await runPack(policies, structuredClone(baseline));
    assert.deepEqual(violations.map((v) => `${v.policy}: ${v.message}`), []);
  });

  it("the unmutated async-mode program passes the pack too", async () => {
    const { violations } = await runPack(policies, structuredClone(asyncBaseline));
    assert.deepEqual(violations.map((v) => `${v.policy}: ${v.message}`), []);
  });

  it("an adopted, well-kept bucket passes the pack too", async () => {
    const r = await runProgramUnderMocks({ stack: "dev", ...adopted(() => undefined) });
    const { violations } = await runPack(policies, fromRecorded(r.resources));
    assert.deepEqual(violations.map((v) => `${v.policy}: ${v.message}`), []);
  });

  for (const f of FAULTS) {
    it(`${f.fault} → ${f.caughtBy}`, async () => {
      let resources: AnalyzedResource[];
      if (f.run) {
        resources = fromRecorded((await runProgramUnderMocks({ stack: "dev", ...f.run })).resources);
      } else {
        const stack = new Stack(structuredClone(f.onAsyncStack ? asyncBaseline : baseline));
        f.mutate!(stack);
        resources = stack.resources;
      }
      const { violations } = await runPack(policies, resources);
      const caught = violations.filter((v) => v.policy === f.caughtBy);
      assert.ok(caught.length > 0, `not caught by ${f.caughtBy}; the pack reported: ${JSON.stringify(violations.map((v) => `${v.policy}: ${v.message}`))}`);
    });
  }

  it("every policy of the pack catches at least one planted fault", () => {
    const catchers = new Set(FAULTS.map((f) => f.caughtBy));
    const idle = policies.map((p) => p.name).filter((n) => !catchers.has(n));
    assert.deepEqual(idle, [], "add a fault for each of these policies");
    for (const f of FAULTS) assert.ok(policies.some((p) => p.name === f.caughtBy), `${f.caughtBy} is not a policy of the pack`);
  });

  it("an adopted bucket without a TLS policy at all fails the preview (the read fails as S3 answers)", async () => {
    await assert.rejects(runProgramUnderMocks({ stack: "dev", ...adopted((b) => delete b.policy) }), /NoSuchBucketPolicy/);
  });
});
