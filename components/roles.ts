import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsContext, Tags } from "./context";
import { ASYNC_FOLDER_NAME } from "../runtime/src/contract";
import { arn, s3Arn } from "./partition";

export interface PolicyStatement {
  Sid: string;
  Effect: "Allow" | "Deny";
  Action: string[];
  /** Absent only in trust policies. */
  Resource?: string | string[];
  Principal?: Record<string, string>;
  Condition?: Record<string, Record<string, string | string[]>>;
}
export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: PolicyStatement[];
}

export interface Prefixes {
  input: string;
  output: string;
  requests: string;
}

export interface ModelLocation {
  bucket: string;
  key: string;
  kind: "prefix" | "archive";
}

/** A resource policy that only denies requests not made over TLS (queues, topics). */
export function tlsOnlyPolicy(action: string, resource: pulumi.Input<string>) {
  return {
    Version: "2012-10-17",
    Statement: [{
      Sid: "DenyInsecureTransport",
      Effect: "Deny",
      Principal: "*",
      Action: action,
      Resource: resource,
      Condition: { Bool: { "aws:SecureTransport": "false" } },
    }],
  };
}

export function assumeRolePolicy(servicePrincipal: string): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [{ Sid: "AssumeByService", Effect: "Allow", Principal: { Service: servicePrincipal }, Action: ["sts:AssumeRole"] }],
  };
}

/** What SageMaker Batch Transform and the FuXi runtime do with the execution role. */
export function sageMakerExecutionPolicy(p: {
  ctx: AwsContext;
  bucket: string;
  prefixes: Prefixes;
  model: ModelLocation;
  repositoryArn: string;
  jobNamePrefix: string;
}): PolicyDocument {
  const { ctx, bucket, prefixes } = p;
  const part = ctx.partition;
  const logGroup = "/aws/sagemaker/TransformJobs";
  const statements: PolicyStatement[] = [
    {
      Sid: "ReadRequestsAndInput",
      Effect: "Allow",
      Action: ["s3:GetObject"],
      Resource: [s3Arn(part, bucket, `${prefixes.requests}*`), s3Arn(part, bucket, `${prefixes.input}*`)],
    },
    {
      // The runtime reads back its own steps and manifest to resume a retried run.
      Sid: "ReadWriteOutput",
      Effect: "Allow",
      Action: ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
      Resource: s3Arn(part, bucket, `${prefixes.output}*`),
    },
    {
      // A run removes what earlier requests left in its output folder (manifest first, then step
      // files of other fingerprints, an old _FAILED.json): docs/contract.md, "No stale files".
      Sid: "DeleteStaleOutput",
      Effect: "Allow",
      Action: ["s3:DeleteObject"],
      Resource: s3Arn(part, bucket, `${prefixes.output}*`),
    },
    {
      // Unconditioned on the one bucket: the runtime asks for a manifest that may not
      // exist yet, and S3 answers 404 (not 403) only to a caller with ListBucket, a check
      // it evaluates without an s3:prefix (a prefix condition would make "absent" AccessDenied).
      Sid: "ListDataBucket",
      Effect: "Allow",
      Action: ["s3:ListBucket"],
      Resource: s3Arn(part, bucket),
    },
    {
      Sid: "ReadModelArtifacts",
      Effect: "Allow",
      Action: ["s3:GetObject"],
      Resource: s3Arn(part, p.model.bucket, p.model.kind === "archive" ? p.model.key : `${p.model.key}*`),
    },
    {
      Sid: "PullRuntimeImage",
      Effect: "Allow",
      Action: ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
      Resource: p.repositoryArn,
    },
    {
      // GetAuthorizationToken has no resource type: AWS requires "*".
      Sid: "EcrLogin",
      Effect: "Allow",
      Action: ["ecr:GetAuthorizationToken"],
      Resource: "*",
    },
    {
      Sid: "TransformJobLogGroup",
      Effect: "Allow",
      Action: ["logs:CreateLogGroup", "logs:DescribeLogStreams"],
      Resource: arn(ctx, "logs", `log-group:${logGroup}:*`),
    },
    {
      Sid: "TransformJobLogStreams",
      Effect: "Allow",
      Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
      Resource: arn(ctx, "logs", `log-group:${logGroup}:log-stream:${p.jobNamePrefix}-*`),
    },
    {
      // PutMetricData has no resource type: AWS requires "*"; the namespace condition scopes it.
      Sid: "TransformJobMetrics",
      Effect: "Allow",
      Action: ["cloudwatch:PutMetricData"],
      Resource: "*",
      Condition: { StringEquals: { "cloudwatch:namespace": logGroup } },
    },
  ];
  if (p.model.kind === "prefix" && p.model.bucket !== bucket) {
    // The runtime HEADs each of the six files; a missing one should read as 404
    // ("does not exist"), which S3 answers only to a caller with ListBucket (see above).
    statements.push({
      Sid: "ListModelBucket",
      Effect: "Allow",
      Action: ["s3:ListBucket"],
      Resource: s3Arn(part, p.model.bucket),
    });
  }
  return { Version: "2012-10-17", Statement: statements };
}

/**
 * What an async inference endpoint does with the execution role beyond Batch Transform's grants: it reads
 * the request object and writes responses and failures inside the output prefix (already granted),
 * publishes each outcome to the two topics (encrypted with the alert key) and logs to its own group.
 */
export function asyncEndpointExecutionPolicy(p: { ctx: AwsContext; endpointName: string; topicArns: string[]; topicKeyArn: string }): PolicyDocument {
  const logGroup = `/aws/sagemaker/Endpoints/${p.endpointName}`;
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "PublishInvocationOutcomes", Effect: "Allow", Action: ["sns:Publish"], Resource: p.topicArns },
      { Sid: "EncryptNotifications", Effect: "Allow", Action: ["kms:GenerateDataKey", "kms:Decrypt"], Resource: p.topicKeyArn },
      { Sid: "EndpointLogGroup", Effect: "Allow", Action: ["logs:CreateLogGroup", "logs:DescribeLogStreams"], Resource: arn(p.ctx, "logs", `log-group:${logGroup}:*`) },
      { Sid: "EndpointLogStreams", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: arn(p.ctx, "logs", `log-group:${logGroup}:log-stream:*`) },
      {
        // PutMetricData has no resource type: AWS requires "*"; the namespace condition scopes it.
        Sid: "EndpointMetrics",
        Effect: "Allow",
        Action: ["cloudwatch:PutMetricData"],
        Resource: "*",
        Condition: { StringEquals: { "cloudwatch:namespace": "/aws/sagemaker/Endpoints" } },
      },
    ],
  };
}

/** What the trigger Lambda (trigger/handler.ts) does. */
export function triggerFunctionPolicy(p: {
  ctx: AwsContext;
  bucket: string;
  prefixes: Prefixes;
  jobNamePrefix: string;
  modelArn: string;
  instanceType: string;
  logGroupArn: string;
  runQueueArns: string[];
  deadLetterQueueArn: string;
  /** serving.mode "async": the one endpoint the dispatcher invokes instead of starting transform jobs. */
  asyncEndpointArn?: string;
}): PolicyDocument {
  const { ctx, bucket, prefixes } = p;
  const part = ctx.partition;
  // SageMaker ARNs carry names in lower case.
  const jobArn = arn(ctx, "sagemaker", `transform-job/${p.jobNamePrefix.toLowerCase()}-*`);
  const doc: PolicyDocument = {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "OwnLogGroup",
        Effect: "Allow",
        Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
        Resource: `${p.logGroupArn}:*`,
      },
      {
        // Unconditioned on the one bucket: HeadObject of a missing request object
        // answers 404 (not 403) only with ListBucket, and S3 evaluates that check
        // without an s3:prefix, so a prefix condition would turn "absent" into AccessDenied.
        Sid: "ListDataBucket",
        Effect: "Allow",
        Action: ["s3:ListBucket"],
        Resource: s3Arn(part, bucket),
      },
      {
        // HeadObject of the request object (an earlier delivery of the same upload wrote it).
        Sid: "HeadRequests",
        Effect: "Allow",
        Action: ["s3:GetObject"],
        Resource: s3Arn(part, bucket, `${prefixes.requests}*`),
      },
      {
        Sid: "WriteRequestsAndFailureMarkers",
        Effect: "Allow",
        Action: ["s3:PutObject"],
        Resource: [s3Arn(part, bucket, `${prefixes.requests}*`), s3Arn(part, bucket, `${prefixes.output}*/_FAILED.json`)],
      },
      {
        // CreateTransformJob's only resource is the job; the model and the instance type
        // are limited through the condition keys the action offers. No iam:PassRole: a
        // transform job runs under the model's role and the request names no role.
        Sid: "StartTransformJobsOnTheModel",
        Effect: "Allow",
        Action: ["sagemaker:CreateTransformJob"],
        Resource: jobArn,
        Condition: {
          ArnEquals: { "sagemaker:ModelArn": p.modelArn },
          "ForAllValues:StringEquals": { "sagemaker:InstanceTypes": [p.instanceType] },
          Null: { "sagemaker:InstanceTypes": "false" },
        },
      },
      {
        // CreateTransformJob with Tags is also authorised as sagemaker:AddTags on the new job.
        Sid: "TagNewTransformJobs",
        Effect: "Allow",
        Action: ["sagemaker:AddTags"],
        Resource: jobArn,
      },
      {
        // Admission asks SageMaker whether a run's job has ended before it frees the run's slot.
        Sid: "ReadOwnTransformJobs",
        Effect: "Allow",
        Action: ["sagemaker:DescribeTransformJob"],
        Resource: jobArn,
      },
      // The run queue (docs/trigger.md, "Run queue").
      {
        // The event source mappings poll and delete; the dispatcher delays waiting runs
        // (ChangeMessageVisibility), requeues long waits (SendMessage) and reads the operational
        // queue's depth so backfills yield (GetQueueAttributes).
        Sid: "ConsumeRunQueues",
        Effect: "Allow",
        Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:SendMessage"],
        Resource: p.runQueueArns,
      },
      {
        Sid: "DeadLetterRunsThatCannotStart",
        Effect: "Allow",
        Action: ["sqs:SendMessage"],
        Resource: p.deadLetterQueueArn,
      },
      {
        // ListTransformJobs has no resource-level permissions: AWS requires "*". Admission counts
        // this stack's InProgress jobs with it (filtered by the job-name prefix in the call).
        Sid: "CountTransformJobs",
        Effect: "Allow",
        Action: ["sagemaker:ListTransformJobs"],
        Resource: "*",
      },
    ],
  };
  if (p.asyncEndpointArn === undefined) return doc;
  // Async serving starts no transform job: the transform grants give way to the endpoint's.
  const transformOnly = new Set(["StartTransformJobsOnTheModel", "TagNewTransformJobs", "ReadOwnTransformJobs", "CountTransformJobs"]);
  doc.Statement = doc.Statement.filter((st) => !transformOnly.has(st.Sid));
  doc.Statement.push(
    { Sid: "InvokeOnlyThisEndpoint", Effect: "Allow", Action: ["sagemaker:InvokeEndpointAsync"], Resource: p.asyncEndpointArn },
    {
      // HEAD of `<InferenceId>.out` / `-error.out`: how the dispatcher learns that an invocation ended.
      Sid: "ReadAsyncOutcomes",
      Effect: "Allow",
      Action: ["s3:GetObject"],
      Resource: s3Arn(part, bucket, `${asyncFolderPattern(prefixes.output)}*`),
    },
  );
  return doc;
}

/** SageMaker ARNs carry names in lower case. */
export const asyncEndpointArn = (ctx: AwsContext, endpointName: string) => arn(ctx, "sagemaker", `endpoint/${endpointName.toLowerCase()}`);

const asyncFolderPattern = (outputPrefix: string) => `${outputPrefix}${ASYNC_FOLDER_NAME}/`;

function trustPolicyJson(principal: string): string {
  return JSON.stringify(assumeRolePolicy(principal));
}

export interface SageMakerExecutionRoleArgs {
  ctx: AwsContext;
  bucketName: pulumi.Input<string>;
  prefixes: Prefixes;
  model: ModelLocation;
  repositoryArn: pulumi.Input<string>;
  jobNamePrefix: string;
  tags: Tags;
}

/** The role SageMaker assumes for the model and its transform jobs. */
export class SageMakerExecutionRole extends pulumi.ComponentResource {
  readonly roleArn: pulumi.Output<string>;
  readonly roleName: pulumi.Output<string>;
  /** The inline policy; depend on it before anything runs under the role. */
  readonly policy: aws.iam.RolePolicy;

  constructor(name: string, args: SageMakerExecutionRoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fuxi:iam:SageMakerExecutionRole", name, {}, opts);
    const role = new aws.iam.Role(name, {
      name: `${args.jobNamePrefix}-sagemaker`,
      description: `SageMaker execution role for FuXi transform jobs ${args.jobNamePrefix}-*`,
      assumeRolePolicy: trustPolicyJson(args.ctx.facts.principals.sagemaker),
      tags: args.tags,
    }, { parent: this });
    this.policy = new aws.iam.RolePolicy(`${name}-policy`, {
      role: role.name,
      policy: pulumi.all([args.bucketName, args.repositoryArn]).apply(([bucket, repositoryArn]) =>
        JSON.stringify(sageMakerExecutionPolicy({ ctx: args.ctx, bucket, prefixes: args.prefixes, model: args.model, repositoryArn, jobNamePrefix: args.jobNamePrefix })),
      ),
    }, { parent: this });
    this.roleArn = role.arn;
    this.roleName = role.name;
    this.registerOutputs({ roleArn: this.roleArn, roleName: this.roleName });
  }
}

export interface TriggerFunctionRoleArgs {
  ctx: AwsContext;
  bucketName: pulumi.Input<string>;
  prefixes: Prefixes;
  jobNamePrefix: string;
  modelArn: pulumi.Input<string>;
  instanceType: string;
  logGroupArn: pulumi.Input<string>;
  runQueueArns: pulumi.Input<string>[];
  deadLetterQueueArn: pulumi.Input<string>;
  /** serving.mode "async": the endpoint the dispatcher may invoke (and nothing else on SageMaker). */
  asyncEndpointName?: string;
  tags: Tags;
}

/** The trigger Lambda's execution role. */
export class TriggerFunctionRole extends pulumi.ComponentResource {
  readonly roleArn: pulumi.Output<string>;
  readonly policy: aws.iam.RolePolicy;

  constructor(name: string, args: TriggerFunctionRoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fuxi:iam:TriggerFunctionRole", name, {}, opts);
    const role = new aws.iam.Role(name, {
      name: `${args.jobNamePrefix}-trigger`,
      description: `Trigger Lambda role: starts FuXi transform jobs ${args.jobNamePrefix}-*`,
      assumeRolePolicy: trustPolicyJson(args.ctx.facts.principals.lambda),
      tags: args.tags,
    }, { parent: this });
    this.policy = new aws.iam.RolePolicy(`${name}-policy`, {
      role: role.name,
      policy: pulumi
        .all([args.bucketName, args.modelArn, args.logGroupArn, pulumi.all(args.runQueueArns), args.deadLetterQueueArn])
        .apply(([bucket, modelArn, logGroupArn, runQueueArns, deadLetterQueueArn]) =>
          JSON.stringify(triggerFunctionPolicy({ ctx: args.ctx, bucket, prefixes: args.prefixes, jobNamePrefix: args.jobNamePrefix, modelArn, instanceType: args.instanceType, logGroupArn, runQueueArns, deadLetterQueueArn, ...(args.asyncEndpointName ? { asyncEndpointArn: asyncEndpointArn(args.ctx, args.asyncEndpointName) } : {}) })),
        ),
    }, { parent: this });
    this.roleArn = role.arn;
    this.registerOutputs({ roleArn: this.roleArn });
  }
}
