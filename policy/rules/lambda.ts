import * as aws from "@pulumi/aws";
import { validateResourceOfType, type PolicyResource, type ResourceValidationPolicy, type StackValidationPolicy } from "@pulumi/policy";
import { label, ofType, refersTo } from "../lib/links";
import { T } from "../lib/types";
import { isSet, knownString } from "../lib/values";

export interface RuntimeConfig {
  allowedRuntimes: string[];
}
/**
 * Runtimes with standard support from AWS on 2026-11-22 (docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html).
 * nodejs20.x, python3.10/3.11, java17, provided.al2 and dotnet8 were deprecated during 2026.
 */
export const RUNTIME_DEFAULTS: RuntimeConfig = {
  allowedRuntimes: [
    "nodejs22.x",
    "nodejs24.x",
    "python3.12",
    "python3.13",
    "python3.14",
    "java21",
    "java25",
    "dotnet10",
    "ruby3.3",
    "ruby3.4",
    "provided.al2023",
  ],
};

export const lambdaSupportedRuntime: ResourceValidationPolicy = {
  name: "lambda-supported-runtime",
  description: "Lambda functions use a runtime that AWS still supports (container-image functions bring their own).",
  enforcementLevel: "mandatory",
  severity: "medium",
  configSchema: {
    properties: {
      allowedRuntimes: {
        type: "array",
        items: { type: "string" },
        default: RUNTIME_DEFAULTS.allowedRuntimes,
        description: "Runtime identifiers that may be deployed; update when AWS deprecates one.",
      },
    },
  },
  remediationSteps: "Move the function to a supported runtime, e.g. nodejs22.x.",
  validateResource: validateResourceOfType(aws.lambda.Function, (fn, args, report) => {
    if (fn.packageType === "Image") return;
    const { allowedRuntimes } = { ...RUNTIME_DEFAULTS, ...args.getConfig<Partial<RuntimeConfig>>() };
    if (fn.runtime === undefined) {
      report(`${label(args)} is a Zip function without a runtime`);
    } else if (!allowedRuntimes.includes(fn.runtime)) {
      report(`${label(args)} uses runtime ${JSON.stringify(fn.runtime)}, which is not supported; allowed: ${allowedRuntimes.join(", ")}`);
    }
  }),
};

export const lambdaReservedConcurrency: ResourceValidationPolicy = {
  name: "lambda-reserved-concurrency",
  description: "Lambda functions reserve concurrency, which caps how many copies run at once (and how many transform jobs a burst can start).",
  enforcementLevel: "mandatory",
  severity: "medium",
  remediationSteps: "Set reservedConcurrentExecutions to a small positive number.",
  validateResource: validateResourceOfType(aws.lambda.Function, (fn, args, report) => {
    const r = fn.reservedConcurrentExecutions;
    if (r === undefined || r === -1) {
      report(`${label(args)} reserves no concurrency (reservedConcurrentExecutions is ${r ?? "unset"})`);
    } else if (!Number.isInteger(r) || r < 1) {
      report(`${label(args)} has reservedConcurrentExecutions ${r}; it must be a positive integer (0 stops every invocation)`);
    }
  }),
};

export const lambdaFailureDestination: StackValidationPolicy = {
  name: "lambda-failure-destination",
  description: "Every Lambda function keeps events that failed all retries: a dead-letter queue, an on-failure destination, or (for a function fed by SQS event source mappings) source queues that redrive to a dead-letter queue.",
  enforcementLevel: "mandatory",
  severity: "medium",
  remediationSteps: "Set deadLetterConfig.targetArn on the function, add an aws.lambda.FunctionEventInvokeConfig with destinationConfig.onFailure.destination, or give every SQS queue that feeds it a redrivePolicy.",
  validateStack: (args, report) => {
    const invokeConfigs = ofType(args.resources, T.lambdaEventInvokeConfig);
    const mappings = ofType(args.resources, T.lambdaEventSourceMapping);
    const queues = ofType(args.resources, T.sqsQueue);
    for (const fn of ofType(args.resources, T.lambdaFunction)) {
      if (isSet(() => fn.props.deadLetterConfig?.targetArn)) continue;
      // Polled functions: a failed message stays in its queue, then goes to the queue's dead-letter queue.
      const sources = mappings.filter((m) => refersTo(m, "functionName", fn, ["name", "arn", "id"]));
      const sourceQueues = sources.map((m) => queues.find((q) => refersTo(m, "eventSourceArn", q, ["arn"])));
      if (sources.length > 0 && sourceQueues.every((q) => q !== undefined && isSet(() => q.props.redrivePolicy))) continue;
      const configs = invokeConfigs.filter((c) => refersTo(c, "functionName", fn, ["name", "arn", "id"]));
      if (configs.some((c) => isSet(() => c.props.destinationConfig?.onFailure?.destination))) continue;
      report(
        configs.length === 0
          ? `${label(fn)} has no deadLetterConfig and no FunctionEventInvokeConfig with an on-failure destination`
          : `${label(fn)} has no deadLetterConfig and its FunctionEventInvokeConfig sets no destinationConfig.onFailure.destination`,
        fn.urn,
      );
    }
  },
};

/** The log group a function writes to: its loggingConfig.logGroup, or the default /aws/lambda/<name>. */
function logGroupsOf(fn: PolicyResource, groups: PolicyResource[]): PolicyResource[] {
  const configured = knownString(() => fn.props.loggingConfig?.logGroup);
  const fnName = knownString(() => fn.props.name);
  return groups.filter((g) => {
    if ((fn.propertyDependencies.loggingConfig ?? []).some((d) => d.urn === g.urn)) return true;
    if ((g.propertyDependencies.name ?? []).some((d) => d.urn === fn.urn)) return true;
    const groupName = knownString(() => g.props.name);
    if (groupName === undefined) return false;
    return configured !== undefined ? groupName === configured : fnName !== undefined && groupName === `/aws/lambda/${fnName}`;
  });
}

export const lambdaLogRetention: StackValidationPolicy = {
  name: "lambda-log-retention",
  description: "Every Lambda function's log group is managed by the stack (so log-group-retention applies to it and logs do not pile up forever).",
  enforcementLevel: "mandatory",
  severity: "low",
  remediationSteps: "Create an aws.cloudwatch.LogGroup with retentionInDays and point the function's loggingConfig.logGroup at it.",
  validateStack: (args, report) => {
    const groups = ofType(args.resources, T.logGroup);
    for (const fn of ofType(args.resources, T.lambdaFunction)) {
      if (logGroupsOf(fn, groups).length === 0) {
        report(`${label(fn)} has no log group in this stack (set loggingConfig.logGroup to a LogGroup with retentionInDays)`, fn.urn);
      }
    }
  },
};

export interface LogRetentionConfig {
  minRetentionDays: number;
}
export const LOG_RETENTION_DEFAULTS: LogRetentionConfig = { minRetentionDays: 1 };

export const logGroupRetention: ResourceValidationPolicy = {
  name: "log-group-retention",
  description: "CloudWatch log groups set retentionInDays, at least minRetentionDays (the prod workflow asks for 365).",
  enforcementLevel: "mandatory",
  severity: "low",
  configSchema: {
    properties: {
      minRetentionDays: { type: "integer", minimum: 1, default: LOG_RETENTION_DEFAULTS.minRetentionDays, description: "Shortest accepted retentionInDays." },
    },
  },
  remediationSteps: "Set retentionInDays (fuxi:lambda.logRetentionDays) to a value CloudWatch accepts that is at least minRetentionDays.",
  validateResource: (args, report) => {
    if (args.type !== T.logGroup) return args.notApplicable("not a log group");
    const { minRetentionDays } = { ...LOG_RETENTION_DEFAULTS, ...args.getConfig<Partial<LogRetentionConfig>>() };
    const days = args.props.retentionInDays;
    if (!Number.isInteger(days) || days <= 0) report(`${label(args)} sets no retentionInDays (logs never expire)`);
    else if (days < minRetentionDays) report(`${label(args)} keeps logs ${days} days; at least ${minRetentionDays} required`);
  },
};

const S3_PRINCIPAL = /^s3\.amazonaws\.com(\.cn)?$/;

export const lambdaS3PermissionScoped: ResourceValidationPolicy = {
  name: "lambda-s3-permission-scoped",
  description: "Lambda permissions for S3 carry SourceArn (the bucket) and SourceAccount, so no other bucket or account can invoke the function.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps: "Set sourceArn to the bucket ARN and sourceAccount to the bucket owner's account id.",
  validateResource: validateResourceOfType(aws.lambda.Permission, (perm, args, report) => {
    const principal = knownString(() => perm.principal);
    if (principal === undefined || !S3_PRINCIPAL.test(principal)) return args.notApplicable("not an S3 permission");
    if (!isSet(() => perm.sourceArn)) {
      report(`${label(args)} lets S3 invoke the function without sourceArn`);
    } else {
      const arn = knownString(() => perm.sourceArn);
      if (arn !== undefined && !/^arn:[a-z-]+:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(arn)) {
        report(`${label(args)} has sourceArn ${JSON.stringify(arn)}, which is not the ARN of one bucket`);
      }
    }
    if (!isSet(() => perm.sourceAccount)) {
      report(`${label(args)} lets S3 invoke the function without sourceAccount`);
    } else {
      const account = knownString(() => perm.sourceAccount);
      if (account !== undefined && !/^\d{12}$/.test(account)) report(`${label(args)} has sourceAccount ${JSON.stringify(account)}, expected a 12-digit account id`);
    }
  }),
};

export const lambdaPolicies = [lambdaSupportedRuntime, lambdaReservedConcurrency, lambdaFailureDestination, lambdaLogRetention, logGroupRetention, lambdaS3PermissionScoped];
