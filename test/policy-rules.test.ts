import { strict as assert } from "node:assert";
import { fromRecorded, runPack, runResourcePolicy, runStackPolicy, UNKNOWN_VALUES, type AnalyzedResource, type PackResult } from "../policy/harness";
import * as rules from "../policy/rules";
import type { PolicyPackConfig, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";

const ACCOUNT = "123456789012";
const P = "aws-cn";

function urn(type: string, name: string): string {
  return `urn:pulumi:dev::fuxi::${type}::${name}`;
}
function res(type: string, name: string, props: Record<string, any>, extra: Partial<AnalyzedResource> = {}): AnalyzedResource {
  return { type, name, urn: urn(type, name), props, ...extra };
}
const TAGS = { "fuxi:project": "fuxi-sagemaker", "fuxi:stack": "dev" };
const bucketArn = `arn:${P}:s3:::fuxi-dev-data`;
const tlsOnly = {
  Version: "2012-10-17",
  Statement: [
    {
      Sid: "DenyInsecureTransport",
      Effect: "Deny",
      Principal: "*",
      Action: "s3:*",
      Resource: [bucketArn, `${bucketArn}/*`],
      Condition: { Bool: { "aws:SecureTransport": "false" } },
    },
  ],
};
const roleArn = `arn:${P}:iam::${ACCOUNT}:role/fuxi-dev-sagemaker`;
const digest = "a".repeat(64);

/** A stack that follows every rule; each test breaks one thing. */
function goodStack(): AnalyzedResource[] {
  return [
    res("aws:s3/bucket:Bucket", "data", { bucket: "fuxi-dev-data", tags: TAGS }),
    res("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "data-sse", {
      bucket: "fuxi-dev-data",
      rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }],
    }),
    res("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "data-pab", {
      bucket: "fuxi-dev-data",
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    }),
    res("aws:s3/bucketPolicy:BucketPolicy", "data-policy", { bucket: "fuxi-dev-data", policy: JSON.stringify(tlsOnly) }),
    res("aws:s3/bucketVersioning:BucketVersioning", "data-versioning", { bucket: "fuxi-dev-data", versioningConfiguration: { status: "Enabled" } }),
    res("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "data-lifecycle", {
      bucket: "fuxi-dev-data",
      rules: [{ id: "abort-multipart", status: "Enabled", filter: {}, abortIncompleteMultipartUpload: { daysAfterInitiation: 1 } }],
    }),
    res("aws:iam/role:Role", "sagemaker", {
      name: "fuxi-dev-sagemaker",
      arn: roleArn,
      tags: TAGS,
      assumeRolePolicy: JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { Service: "sagemaker.amazonaws.com" }, Action: "sts:AssumeRole" }] }),
      inlinePolicies: [
        {
          name: "data",
          policy: JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              { Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject"], Resource: `${bucketArn}/output/*` },
              { Effect: "Allow", Action: ["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"], Resource: "*" },
            ],
          }),
        },
      ],
    }),
    res("aws:iam/rolePolicy:RolePolicy", "trigger-start-jobs", {
      role: "fuxi-dev-trigger",
      policy: {
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Action: "sagemaker:CreateTransformJob", Resource: `arn:${P}:sagemaker:cn-northwest-1:${ACCOUNT}:transform-job/fuxi-dev-*` },
          { Effect: "Allow", Action: "iam:PassRole", Resource: roleArn, Condition: { StringEquals: { "iam:PassedToService": "sagemaker.amazonaws.com" } } },
        ],
      },
    }),
    res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "trigger-basic", {
      role: "fuxi-dev-trigger",
      policyArn: `arn:${P}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole`,
    }),
    res("aws:ecr/repository:Repository", "runtime", { name: "fuxi-dev-runtime", imageTagMutability: "IMMUTABLE", imageScanningConfiguration: { scanOnPush: true }, tags: TAGS }),
    res("aws:ecr/lifecyclePolicy:LifecyclePolicy", "runtime-lifecycle", {
      repository: "fuxi-dev-runtime",
      policy: JSON.stringify({ rules: [{ rulePriority: 1, selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: 14 }, action: { type: "expire" } }] }),
    }),
    res("aws:lambda/function:Function", "trigger", {
      name: "fuxi-dev-trigger",
      arn: `arn:${P}:lambda:cn-northwest-1:${ACCOUNT}:function:fuxi-dev-trigger`,
      runtime: "nodejs22.x",
      reservedConcurrentExecutions: 2,
      loggingConfig: { logFormat: "JSON", logGroup: "/fuxi/dev/trigger" },
      environment: { variables: { TRANSFORM_INSTANCE_TYPE: "ml.g4dn.xlarge", STACK_NAME: "dev" } },
      tags: TAGS,
    }),
    res("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "trigger-invoke", {
      functionName: "fuxi-dev-trigger",
      destinationConfig: { onFailure: { destination: `arn:${P}:sqs:cn-northwest-1:${ACCOUNT}:fuxi-dev-trigger-failed` } },
    }),
    res("aws:cloudwatch/logGroup:LogGroup", "trigger-logs", { name: "/fuxi/dev/trigger", retentionInDays: 30, tags: TAGS }),
    res("aws:lambda/permission:Permission", "s3-invoke", {
      action: "lambda:InvokeFunction",
      function: "fuxi-dev-trigger",
      principal: "s3.amazonaws.com",
      sourceArn: bucketArn,
      sourceAccount: ACCOUNT,
    }),
    res("aws:sagemaker/model:Model", "model", { executionRoleArn: roleArn, primaryContainer: { image: `${ACCOUNT}.dkr.ecr.cn-northwest-1.amazonaws.com.cn/fuxi-dev-runtime@sha256:${digest}` }, tags: TAGS }),
  ];
}

function replace(stack: AnalyzedResource[], name: string, change: (props: Record<string, any>) => void): AnalyzedResource[] {
  return stack.map((r) => {
    if (r.name !== name) return r;
    const props = structuredClone(r.props);
    change(props);
    return { ...r, props };
  });
}
function without(stack: AnalyzedResource[], name: string): AnalyzedResource[] {
  assert.ok(stack.some((r) => r.name === name), `fixture has no resource ${name}`);
  return stack.filter((r) => r.name !== name);
}

async function run(policy: ResourceValidationPolicy | StackValidationPolicy, stack: AnalyzedResource[], config: PolicyPackConfig = {}): Promise<PackResult> {
  if ("validateStack" in policy) return runStackPolicy(policy, stack, config);
  const results = await Promise.all(stack.map((r) => runResourcePolicy(policy, r, config)));
  return { violations: results.flatMap((r) => r.violations), unknowns: results.flatMap((r) => r.unknowns) };
}

async function expectPass(policy: ResourceValidationPolicy | StackValidationPolicy, stack: AnalyzedResource[], config?: PolicyPackConfig): Promise<void> {
  const { violations, unknowns } = await run(policy, stack, config);
  assert.deepEqual(violations, [], `${policy.name} reported violations`);
  assert.deepEqual(unknowns, []);
}

async function expectViolation(policy: ResourceValidationPolicy | StackValidationPolicy, stack: AnalyzedResource[], pattern: RegExp, config?: PolicyPackConfig): Promise<void> {
  const { violations } = await run(policy, stack, config);
  assert.ok(violations.length > 0, `${policy.name} reported nothing`);
  assert.ok(
    violations.some((v) => v.policy === policy.name && pattern.test(v.message)),
    `${policy.name}: no violation matches ${pattern}; got ${JSON.stringify(violations.map((v) => v.message))}`,
  );
}

describe("policy pack rules", () => {
  it("the compliant fixture passes the whole pack with zero violations", async () => {
    const result = await runPack(rules.policies, goodStack());
    assert.deepEqual(result.violations, []);
    assert.deepEqual(result.unknowns, []);
  });

  it("every policy has a unique name, a description and a known enforcement level", () => {
    const names = rules.policies.map((p) => p.name);
    assert.equal(new Set(names).size, names.length);
    for (const p of rules.policies) {
      assert.match(p.name, /^[a-z0-9-]+$/);
      assert.ok(p.description.length > 20, p.name);
      assert.ok(["mandatory", "advisory"].includes(p.enforcementLevel ?? ""), p.name);
    }
  });

  describe("S3", () => {
    it("s3-bucket-encryption", async () => {
      await expectPass(rules.s3BucketEncryption, goodStack());
      await expectViolation(rules.s3BucketCompanions, without(goodStack(), "data-sse"), /"data": has no BucketServerSideEncryptionConfiguration/);
      await expectViolation(
        rules.s3BucketEncryption,
        replace(goodStack(), "data-sse", (p) => (p.rules = [{ bucketKeyEnabled: true }])),
        /sets no default encryption algorithm/,
      );
    });

    it("s3-bucket-public-access-block", async () => {
      await expectPass(rules.s3BucketPublicAccessBlock, goodStack());
      await expectViolation(rules.s3BucketCompanions, without(goodStack(), "data-pab"), /has no BucketPublicAccessBlock/);
      await expectViolation(
        rules.s3BucketPublicAccessBlock,
        replace(goodStack(), "data-pab", (p) => (p.restrictPublicBuckets = false)),
        /does not set restrictPublicBuckets to true/,
      );
      const accountWide = res("aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock", "account", {
        blockPublicAcls: true,
        blockPublicPolicy: true,
        ignorePublicAcls: true,
        restrictPublicBuckets: true,
      });
      await expectPass(rules.s3BucketCompanions, [...without(goodStack(), "data-pab"), accountWide]);
    });

    it("s3-bucket-tls-only", async () => {
      await expectPass(rules.s3BucketTlsOnly, goodStack());
      await expectViolation(rules.s3BucketCompanions, without(goodStack(), "data-policy"), /has no BucketPolicy/);
      await expectViolation(
        rules.s3BucketTlsOnly,
        replace(goodStack(), "data-policy", (p) => (p.policy = JSON.stringify({ ...tlsOnly, Statement: [{ ...tlsOnly.Statement[0], Resource: `${bucketArn}/*` }] }))),
        /has no statement denying s3:\*/,
      );
      await expectViolation(
        rules.s3BucketTlsOnly,
        replace(goodStack(), "data-policy", (p) => (p.policy = JSON.stringify({ ...tlsOnly, Statement: [{ ...tlsOnly.Statement[0], Principal: { AWS: `arn:${P}:iam::${ACCOUNT}:root` } }] }))),
        /has no statement denying/,
      );
      await expectViolation(
        rules.s3BucketTlsOnly,
        replace(goodStack(), "data-policy", (p) => (p.policy = "{not json")),
        /policy: policy document is not valid JSON/,
      );
    });

    it("s3-bucket-versioning", async () => {
      await expectPass(rules.s3BucketVersioning, goodStack());
      await expectViolation(rules.s3BucketCompanions, without(goodStack(), "data-versioning"), /has no BucketVersioning/);
      await expectViolation(
        rules.s3BucketVersioning,
        replace(goodStack(), "data-versioning", (p) => (p.versioningConfiguration.status = "Suspended")),
        /"Suspended", expected "Enabled"/,
      );
    });

    it("s3-bucket-abort-incomplete-multipart (configurable days)", async () => {
      await expectPass(rules.s3BucketAbortIncompleteMultipart, goodStack());
      await expectViolation(rules.s3BucketCompanions, without(goodStack(), "data-lifecycle"), /has no BucketLifecycleConfiguration/);
      await expectViolation(
        rules.s3BucketAbortIncompleteMultipart,
        replace(goodStack(), "data-lifecycle", (p) => (p.rules[0].filter = { prefix: "output/" })),
        /no enabled rule without a prefix/,
      );
      await expectViolation(
        rules.s3BucketAbortIncompleteMultipart,
        replace(goodStack(), "data-lifecycle", (p) => (p.rules[0].status = "Disabled")),
        /no enabled rule/,
      );
      const thirtyDays = replace(goodStack(), "data-lifecycle", (p) => (p.rules[0].abortIncompleteMultipartUpload.daysAfterInitiation = 30));
      await expectViolation(rules.s3BucketAbortIncompleteMultipart, thirtyDays, /between 1 and 7/);
      await expectPass(rules.s3BucketAbortIncompleteMultipart, thirtyDays, { "s3-bucket-abort-incomplete-multipart": { maxDaysAfterInitiation: 30 } });
    });

    it("links companions through propertyDependencies while the bucket name is not known (first preview)", async () => {
      const stack = goodStack().map((r) =>
        r.name === "data"
          ? { ...r, props: { ...r.props, bucket: UNKNOWN_VALUES.string } }
          : r.props.bucket === "fuxi-dev-data"
            ? { ...r, props: { ...r.props, bucket: UNKNOWN_VALUES.string }, propertyDependencies: { bucket: [urn("aws:s3/bucket:Bucket", "data")] } }
            : r,
      );
      await expectPass(rules.s3BucketCompanions, stack);
      // A companion of another bucket does not count.
      const other = stack.map((r) => (r.name === "data-versioning" ? { ...r, propertyDependencies: { bucket: [urn("aws:s3/bucket:Bucket", "other")] } } : r));
      await expectViolation(rules.s3BucketCompanions, other, /has no BucketVersioning/);
      // Content faults reach the stack rule too (an adopted bucket's settings are only seen there).
      await expectViolation(rules.s3BucketCompanions, replace(stack, "data-versioning", (p) => (p.versioningConfiguration.status = "Suspended")), /"Suspended", expected "Enabled"/);
    });
  });

  describe("IAM", () => {
    const withPolicy = (statements: object[]) =>
      [res("aws:iam/policy:Policy", "p", { policy: JSON.stringify({ Version: "2012-10-17", Statement: statements }) })];

    it("iam-no-wildcard-actions", async () => {
      await expectPass(rules.iamNoWildcardActions, goodStack());
      await expectViolation(rules.iamNoWildcardActions, withPolicy([{ Effect: "Allow", Action: "*", Resource: bucketArn }]), /allows "\*"/);
      await expectViolation(rules.iamNoWildcardActions, withPolicy([{ Effect: "Allow", Action: ["s3:GetObject", "S3:*"], Resource: bucketArn }]), /allows "S3:\*"/);
      await expectViolation(rules.iamNoWildcardActions, withPolicy([{ Effect: "Allow", NotAction: "iam:*", Resource: bucketArn }]), /NotAction with Allow/);
      await expectViolation(
        rules.iamNoWildcardActions,
        replace(goodStack(), "sagemaker", (p) => (p.inlinePolicies[0].policy = JSON.stringify({ Statement: { Effect: "Allow", Action: "sagemaker:*", Resource: "*" } }))),
        /inlinePolicies\[data\] statement 0 allows "sagemaker:\*"/,
      );
      // Deny statements may use wildcards (the TLS-only bucket policy pattern).
      await expectPass(rules.iamNoWildcardActions, withPolicy([{ Effect: "Deny", Action: "s3:*", Resource: "*" }]));
      // Partial wildcards are wildcards too.
      await expectViolation(rules.iamNoWildcardActions, withPolicy([{ Effect: "Allow", Action: "s3:Get*", Resource: bucketArn }]), /allows "s3:Get\*"/);
      await expectViolation(rules.iamNoWildcardActions, withPolicy([{ Effect: "Allow", Action: "sagemaker:*Transform*", Resource: bucketArn }]), /allows "sagemaker:\*Transform\*"/);
      await expectViolation(rules.iamNoWildcardActions, withPolicy([{ Effect: "Allow", Action: "s3:?etObject", Resource: bucketArn }]), /"s3:\?etObject"/);
      await expectViolation(rules.iamNoWildcardActions, [res("aws:iam/policy:Policy", "broken", { policy: '{"Statement": [{"Effect": "Permit"}]}' })], /Statement\[0\]: Effect must be "Allow" or "Deny", got "Permit"/);
    });

    it("iam-wildcard-resource-allowlist (configurable actions)", async () => {
      await expectPass(rules.iamWildcardResourceAllowlist, goodStack());
      await expectViolation(
        rules.iamWildcardResourceAllowlist,
        withPolicy([{ Effect: "Allow", Action: ["ecr:GetAuthorizationToken", "s3:GetObject"], Resource: "*" }]),
        /grants "s3:GetObject" on "\*", which names no resource/,
      );
      for (const broad of [`arn:${P}:s3:::*`, `arn:${P}:s3:::*/*`, `arn:${P}:s3:::fuxi-*/input/*`, `arn:*:sagemaker:cn-northwest-1:${ACCOUNT}:model/m`, `arn:${P}:sagemaker:cn-northwest-1:*:model/m`, `arn:${P}:sagemaker:cn-northwest-1:${ACCOUNT}:transform-job/*`, `arn:${P}:sqs:cn-northwest-1:${ACCOUNT}:*`]) {
        await expectViolation(rules.iamWildcardResourceAllowlist, withPolicy([{ Effect: "Allow", Action: "s3:GetObject", Resource: broad }]), /which names no resource/);
      }
      for (const named of [`${bucketArn}/input/*`, `arn:${P}:sagemaker:cn-northwest-1:${ACCOUNT}:transform-job/fuxi-dev-*`, `arn:${P}:logs:cn-northwest-1:${ACCOUNT}:log-group:/aws/lambda/fuxi-dev-trigger:*`, `arn:${P}:sqs:cn-northwest-1:${ACCOUNT}:fuxi-dev-runs`]) {
        await expectPass(rules.iamWildcardResourceAllowlist, withPolicy([{ Effect: "Allow", Action: "s3:GetObject", Resource: named }]));
      }
      // The reasoned allow-list: actions without resource-level permissions, e.g. the dispatcher's ListTransformJobs.
      await expectPass(rules.iamWildcardResourceAllowlist, withPolicy([{ Effect: "Allow", Action: "sagemaker:ListTransformJobs", Resource: "*" }]));
      for (const [action, reason] of Object.entries(rules.RESOURCE_WILDCARD_ALLOWLIST)) {
        assert.match(action, /^[a-z0-9-]+:[A-Za-z]+$/);
        assert.ok(reason.length > 20, `${action} needs a reason`);
      }
      await expectViolation(rules.iamWildcardResourceAllowlist, withPolicy([{ Effect: "Allow", Action: "s3:GetObject", NotResource: bucketArn }]), /NotResource with Allow/);
      const describe = withPolicy([{ Effect: "Allow", Action: "sagemaker:ListModels", Resource: "*" }]);
      await expectViolation(rules.iamWildcardResourceAllowlist, describe, /sagemaker:ListModels/);
      await expectPass(rules.iamWildcardResourceAllowlist, describe, { "iam-wildcard-resource-allowlist": { allowedActions: ["sagemaker:ListModels"] } });
    });

    it("iam-passrole-requires-service-condition", async () => {
      await expectPass(rules.iamPassRoleRequiresService, goodStack());
      await expectViolation(rules.iamPassRoleRequiresService, withPolicy([{ Effect: "Allow", Action: "iam:PassRole", Resource: roleArn }]), /without an iam:PassedToService condition/);
      await expectViolation(rules.iamPassRoleRequiresService, withPolicy([{ Effect: "Allow", Action: "iam:Pass*", Resource: roleArn }]), /without an iam:PassedToService/);
      await expectViolation(
        rules.iamPassRoleRequiresService,
        withPolicy([{ Effect: "Allow", Action: "iam:passrole", Resource: roleArn, Condition: { StringLike: { "iam:PassedToService": "*" } } }]),
        /matches every service/,
      );
      await expectPass(
        rules.iamPassRoleRequiresService,
        withPolicy([{ Effect: "Allow", Action: "iam:PassRole", Resource: roleArn, Condition: { StringEquals: { "IAM:passedToService": ["sagemaker.amazonaws.com"] } } }]),
      );
    });

    it("iam-no-aws-managed-full-access, in every partition", async () => {
      await expectPass(rules.iamNoManagedFullAccess, goodStack());
      for (const arn of [
        "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess",
        "arn:aws-cn:iam::aws:policy/AmazonS3FullAccess",
        "arn:aws-cn:iam::aws:policy/AWSLambda_FullAccess",
        "arn:aws-us-gov:iam::aws:policy/AdministratorAccess",
        "arn:aws-cn:iam::aws:policy/PowerUserAccess",
      ]) {
        await expectViolation(rules.iamNoManagedFullAccess, [res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "a", { role: "r", policyArn: arn })], new RegExp(arn.replace(/[/]/g, "\\/")));
      }
      await expectViolation(
        rules.iamNoManagedFullAccess,
        replace(goodStack(), "sagemaker", (p) => (p.managedPolicyArns = ["arn:aws-cn:iam::aws:policy/AmazonEC2ContainerRegistryFullAccess"])),
        /managedPolicyArns\[0\] attaches the AWS managed policy/,
      );
      // A customer managed policy that happens to have the suffix is not an AWS managed one.
      await expectPass(rules.iamNoManagedFullAccess, [res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "a", { role: "r", policyArn: `arn:${P}:iam::${ACCOUNT}:policy/TeamFullAccess` })]);
    });
  });

  describe("ECR", () => {
    it("ecr-immutable-tags", async () => {
      await expectPass(rules.ecrImmutableTags, goodStack());
      await expectViolation(rules.ecrImmutableTags, replace(goodStack(), "runtime", (p) => delete p.imageTagMutability), /"MUTABLE \(default\)", expected "IMMUTABLE"/);
    });

    it("ecr-scan-on-push", async () => {
      await expectPass(rules.ecrScanOnPush, goodStack());
      await expectViolation(rules.ecrScanOnPush, replace(goodStack(), "runtime", (p) => (p.imageScanningConfiguration.scanOnPush = false)), /scanOnPush to true/);
    });

    it("ecr-lifecycle-policy", async () => {
      await expectPass(rules.ecrLifecyclePolicy, goodStack());
      await expectViolation(rules.ecrLifecyclePolicy, without(goodStack(), "runtime-lifecycle"), /"runtime" has no ECR LifecyclePolicy/);
      await expectViolation(rules.ecrLifecyclePolicy, replace(goodStack(), "runtime-lifecycle", (p) => (p.policy = '{"rules": []}')), /policy has no "rules"/);
    });
  });

  describe("Lambda", () => {
    it("lambda-supported-runtime (configurable list)", async () => {
      await expectPass(rules.lambdaSupportedRuntime, goodStack());
      const node20 = replace(goodStack(), "trigger", (p) => (p.runtime = "nodejs20.x"));
      await expectViolation(rules.lambdaSupportedRuntime, node20, /uses runtime "nodejs20.x", which is not supported/);
      await expectPass(rules.lambdaSupportedRuntime, node20, { "lambda-supported-runtime": { allowedRuntimes: ["nodejs20.x"] } });
      await expectPass(rules.lambdaSupportedRuntime, replace(goodStack(), "trigger", (p) => ((p.packageType = "Image"), delete p.runtime)));
    });

    it("lambda-reserved-concurrency", async () => {
      await expectPass(rules.lambdaReservedConcurrency, goodStack());
      await expectViolation(rules.lambdaReservedConcurrency, replace(goodStack(), "trigger", (p) => delete p.reservedConcurrentExecutions), /reserves no concurrency/);
      await expectViolation(rules.lambdaReservedConcurrency, replace(goodStack(), "trigger", (p) => (p.reservedConcurrentExecutions = -1)), /reserves no concurrency/);
      await expectViolation(rules.lambdaReservedConcurrency, replace(goodStack(), "trigger", (p) => (p.reservedConcurrentExecutions = 0)), /0 stops every invocation/);
    });

    it("lambda-failure-destination", async () => {
      await expectPass(rules.lambdaFailureDestination, goodStack());
      await expectViolation(rules.lambdaFailureDestination, without(goodStack(), "trigger-invoke"), /no deadLetterConfig and no FunctionEventInvokeConfig/);
      await expectViolation(
        rules.lambdaFailureDestination,
        replace(goodStack(), "trigger-invoke", (p) => (p.destinationConfig = { onSuccess: { destination: "x" } })),
        /sets no destinationConfig.onFailure.destination/,
      );
      const dlq = replace(without(goodStack(), "trigger-invoke"), "trigger", (p) => (p.deadLetterConfig = { targetArn: `arn:${P}:sqs:cn-northwest-1:${ACCOUNT}:dlq` }));
      await expectPass(rules.lambdaFailureDestination, dlq);
    });

    it("lambda-log-retention", async () => {
      await expectPass(rules.lambdaLogRetention, goodStack());
      await expectViolation(rules.lambdaLogRetention, without(goodStack(), "trigger-logs"), /has no log group in this stack/);
      await expectViolation(rules.logGroupRetention, replace(goodStack(), "trigger-logs", (p) => delete p.retentionInDays), /sets no retentionInDays/);
      await expectPass(rules.logGroupRetention, goodStack());
      await expectViolation(rules.logGroupRetention, goodStack(), /keeps logs 30 days; at least 365 required/, { "log-group-retention": { minRetentionDays: 365 } });
      // The default log group name works too.
      const byDefaultName = replace(
        replace(goodStack(), "trigger", (p) => delete p.loggingConfig),
        "trigger-logs",
        (p) => (p.name = "/aws/lambda/fuxi-dev-trigger"),
      );
      await expectPass(rules.lambdaLogRetention, byDefaultName);
      // A log group named after another function does not count.
      await expectViolation(rules.lambdaLogRetention, replace(byDefaultName, "trigger-logs", (p) => (p.name = "/aws/lambda/other")), /has no log group/);
    });

    it("lambda-s3-permission-scoped", async () => {
      await expectPass(rules.lambdaS3PermissionScoped, goodStack());
      await expectViolation(rules.lambdaS3PermissionScoped, replace(goodStack(), "s3-invoke", (p) => delete p.sourceAccount), /without sourceAccount/);
      await expectViolation(rules.lambdaS3PermissionScoped, replace(goodStack(), "s3-invoke", (p) => delete p.sourceArn), /without sourceArn/);
      await expectViolation(
        rules.lambdaS3PermissionScoped,
        replace(goodStack(), "s3-invoke", (p) => ((p.principal = "s3.amazonaws.com.cn"), (p.sourceArn = `arn:${P}:s3:::*`))),
        /is not the ARN of one bucket/,
      );
      // Unknown during preview still counts as set.
      await expectPass(rules.lambdaS3PermissionScoped, replace(goodStack(), "s3-invoke", (p) => (p.sourceArn = UNKNOWN_VALUES.string)));
      // Other principals are out of scope.
      await expectPass(rules.lambdaS3PermissionScoped, replace(goodStack(), "s3-invoke", (p) => ((p.principal = "events.amazonaws.com"), delete p.sourceAccount)));
    });
  });

  describe("SageMaker", () => {
    it("sagemaker-image-by-digest", async () => {
      await expectPass(rules.sagemakerImageByDigest, goodStack());
      await expectViolation(
        rules.sagemakerImageByDigest,
        replace(goodStack(), "model", (p) => (p.primaryContainer.image = `${ACCOUNT}.dkr.ecr.cn-northwest-1.amazonaws.com.cn/fuxi-dev-runtime:latest`)),
        /primaryContainer.image ".*:latest" is not a digest reference/,
      );
      await expectViolation(rules.sagemakerImageByDigest, replace(goodStack(), "model", (p) => delete p.primaryContainer), /names no container image/);
      const { unknowns } = await run(rules.sagemakerImageByDigest, replace(goodStack(), "model", (p) => (p.primaryContainer.image = UNKNOWN_VALUES.string)));
      assert.match(unknowns[0]?.message ?? "", /primaryContainer\.image can't be known during preview/);
    });

    it("sagemaker-transform-gpu-instance (configurable list)", async () => {
      await expectPass(rules.sagemakerTransformGpuInstance, goodStack());
      const cpu = replace(goodStack(), "trigger", (p) => (p.environment.variables.TRANSFORM_INSTANCE_TYPE = "ml.m5.xlarge"));
      await expectViolation(rules.sagemakerTransformGpuInstance, cpu, /TRANSFORM_INSTANCE_TYPE is "ml.m5.xlarge", not an allowed GPU instance type/);
      await expectViolation(rules.sagemakerTransformGpuInstance, goodStack(), /"ml.g4dn.xlarge"/, { "sagemaker-transform-gpu-instance": { allowedInstanceTypes: ["ml.g5.xlarge"] } });
      await expectPass(rules.sagemakerTransformGpuInstance, replace(goodStack(), "trigger", (p) => delete p.environment));
    });

    it("sagemaker-execution-role-not-admin", async () => {
      await expectPass(rules.sagemakerExecutionRoleNotAdmin, goodStack());
      await expectViolation(
        rules.sagemakerExecutionRoleNotAdmin,
        replace(goodStack(), "sagemaker", (p) => (p.managedPolicyArns = ["arn:aws-cn:iam::aws:policy/AdministratorAccess"])),
        /runs under aws:iam\/role:Role "sagemaker", which has arn:aws-cn:iam::aws:policy\/AdministratorAccess attached/,
      );
      const attached = [
        ...goodStack(),
        res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "admin", { role: "fuxi-dev-sagemaker", policyArn: "arn:aws-cn:iam::aws:policy/PowerUserAccess" }),
      ];
      await expectViolation(rules.sagemakerExecutionRoleNotAdmin, attached, /PowerUserAccess attached/);
      const inlineStar = [
        ...goodStack(),
        res("aws:iam/rolePolicy:RolePolicy", "star", { role: "fuxi-dev-sagemaker", policy: JSON.stringify({ Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] }) }),
      ];
      await expectViolation(rules.sagemakerExecutionRoleNotAdmin, inlineStar, /is granted \["\*"\] on every resource by aws:iam\/rolePolicy:RolePolicy "star"/);
      const external = replace(goodStack(), "model", (p) => (p.executionRoleArn = `arn:${P}:iam::${ACCOUNT}:role/SomeoneElsesRole`));
      await expectViolation(rules.sagemakerExecutionRoleNotAdmin, external, /not a role created by this stack/);
      await expectPass(rules.sagemakerExecutionRoleNotAdmin, external, { "sagemaker-execution-role-not-admin": { allowExternalRoles: true } });
    });
  });

  describe("new gaps: trust, public, whole-bucket writes, SQS/SNS", () => {
    const queueArn = `arn:${P}:sqs:cn-northwest-1:${ACCOUNT}:q`;
    const topicArn = `arn:${P}:sns:cn-northwest-1:${ACCOUNT}:t`;
    const deny = (action: string, resource: string) => ({ Effect: "Deny", Principal: "*", Action: action, Resource: resource, Condition: { Bool: { "aws:SecureTransport": "false" } } });
    const messaging = (): AnalyzedResource[] => [
      res("aws:sqs/queue:Queue", "q", { name: "q", sqsManagedSseEnabled: true, tags: TAGS }, { outputs: { name: "q", url: "https://sqs/q", arn: queueArn, sqsManagedSseEnabled: true, tags: TAGS } }),
      res("aws:sqs/queuePolicy:QueuePolicy", "q-policy", { queueUrl: "https://sqs/q", policy: JSON.stringify({ Version: "2012-10-17", Statement: [deny("sqs:*", queueArn)] }) }),
      res("aws:sns/topic:Topic", "t", { kmsMasterKeyId: "arn:key", tags: TAGS }, { outputs: { arn: topicArn, kmsMasterKeyId: "arn:key", tags: TAGS } }),
      res("aws:sns/topicPolicy:TopicPolicy", "t-policy", { arn: topicArn, policy: JSON.stringify({ Version: "2012-10-17", Statement: [deny("sns:Publish", topicArn)] }) }),
    ];

    it("iam-s3-writes-scoped: no PutObject/DeleteObject on bucket/*", async () => {
      await expectPass(rules.iamS3WritesScoped, goodStack());
      const whole = [res("aws:iam/rolePolicy:RolePolicy", "p", { role: "r", policy: JSON.stringify({ Statement: [{ Effect: "Allow", Action: ["s3:PutObject"], Resource: `${bucketArn}/*` }] }) })];
      await expectViolation(rules.iamS3WritesScoped, whole, /every object of the bucket/);
    });

    it("iam-trust-policy-not-public", async () => {
      await expectPass(rules.iamTrustPolicyNotPublic, goodStack());
      for (const principal of ["*", { AWS: "*" }, { AWS: ["arn:aws-cn:iam::111122223333:root", "*"] }]) {
        await expectViolation(
          rules.iamTrustPolicyNotPublic,
          replace(goodStack(), "sagemaker", (p) => (p.assumeRolePolicy = JSON.stringify({ Statement: [{ Effect: "Allow", Principal: principal, Action: "sts:AssumeRole" }] }))),
          /lets every AWS principal assume the role/,
        );
      }
    });

    it("resource-policy-not-public: bucket, queue, topic and key policies", async () => {
      await expectPass(rules.resourcePolicyNotPublic, [...goodStack(), ...messaging()]);
      const publicRead = { Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: `${bucketArn}/*` };
      await expectViolation(rules.resourcePolicyNotPublic, replace(goodStack(), "data-policy", (p) => (p.policy = JSON.stringify({ ...tlsOnly, Statement: [...tlsOnly.Statement, publicRead] }))), /to every principal without a source or account condition/);
      const fromBucket = { Effect: "Allow", Principal: "*", Action: "sqs:SendMessage", Resource: queueArn, Condition: { ArnEquals: { "aws:SourceArn": bucketArn } } };
      const q = replace(messaging(), "q-policy", (p) => (p.policy = JSON.stringify({ Statement: [deny("sqs:*", queueArn), fromBucket] })));
      await expectPass(rules.resourcePolicyNotPublic, q);
      await expectViolation(rules.resourcePolicyNotPublic, replace(messaging(), "t-policy", (p) => (p.policy = JSON.stringify({ Statement: [{ Effect: "Allow", Principal: { AWS: "*" }, Action: "sns:Publish", Resource: topicArn }] }))), /aws:sns\/topicPolicy/);
    });

    it("sqs-queue-encrypted, sns-topic-encrypted", async () => {
      await expectPass(rules.sqsQueueEncrypted, messaging());
      await expectPass(rules.snsTopicEncrypted, messaging());
      await expectViolation(rules.sqsQueueEncrypted, replace(messaging(), "q", (p) => (p.sqsManagedSseEnabled = false)), /not encrypted at rest/);
      await expectPass(rules.sqsQueueEncrypted, replace(messaging(), "q", (p) => { p.sqsManagedSseEnabled = false; p.kmsMasterKeyId = "alias/x"; }));
      await expectViolation(rules.snsTopicEncrypted, replace(messaging(), "t", (p) => delete p.kmsMasterKeyId), /not encrypted at rest/);
    });

    it("sqs-sns-tls-only and sqs-sns-policy-present", async () => {
      await expectPass(rules.messagingTlsOnly, messaging());
      await expectPass(rules.messagingPolicyPresent, messaging());
      await expectViolation(rules.messagingTlsOnly, replace(messaging(), "q-policy", (p) => (p.policy = JSON.stringify({ Statement: [{ ...deny("sqs:*", queueArn), Condition: {} }] }))), /has no statement denying sqs:\*/);
      await expectViolation(rules.messagingTlsOnly, replace(messaging(), "t-policy", (p) => (p.policy = JSON.stringify({ Statement: [deny("sns:Subscribe", topicArn)] }))), /sns:\* \(or sns:Publish\)/);
      await expectViolation(rules.messagingPolicyPresent, without(messaging(), "q-policy"), /aws:sqs\/queue:Queue "q" has no access policy/);
      await expectViolation(rules.messagingPolicyPresent, without(messaging(), "t-policy"), /aws:sns\/topic:Topic "t" has no access policy/);
      // An inline queue policy counts.
      const inline = replace(without(messaging(), "q-policy"), "q", (p) => (p.policy = JSON.stringify({ Statement: [deny("sqs:*", queueArn)] })));
      await expectPass(rules.messagingPolicyPresent, inline.map((r) => (r.name === "q" ? { ...r, outputs: { ...r.outputs, policy: r.props.policy } } : r)));
    });
  });

  describe("Tags", () => {
    it("required-tags (configurable keys, provider defaultTags count)", async () => {
      await expectPass(rules.requiredTags, goodStack());
      await expectViolation(rules.requiredTags, replace(goodStack(), "data", (p) => delete p.tags), /aws:s3\/bucket:Bucket "data" is missing required tags "fuxi:project", "fuxi:stack"/);
      await expectViolation(
        rules.requiredTags,
        replace(goodStack(), "runtime", (p) => (p.tags = { "fuxi:stack": "dev" })),
        /aws:ecr\/repository:Repository "runtime" is missing required tag "fuxi:project"/,
      );
      await expectViolation(rules.requiredTags, goodStack(), /missing required tag "owner"/, { "required-tags": { requiredKeys: ["fuxi:stack", "owner"] } });
      // Untaggable types (BucketPolicy, Permission, ...) are not checked.
      const { violations } = await run(rules.requiredTags, goodStack(), { "required-tags": { requiredKeys: ["owner"] } });
      assert.ok(!violations.some((v) => /BucketPolicy|Permission|LifecyclePolicy/.test(v.message)), JSON.stringify(violations));
      // An untagged taggable resource under a provider with defaultTags (JSON-encoded, as the SDK sends provider config) passes.
      const provider = { type: "pulumi:providers:aws", name: "cn", urn: urn("pulumi:providers:aws", "cn"), props: { region: "cn-northwest-1", defaultTags: JSON.stringify({ tags: TAGS }) } };
      const untagged = replace(goodStack(), "data", (p) => delete p.tags).map((r) => ({ ...r, provider }));
      await expectPass(rules.requiredTags, untagged);
    });

    it("resolves a recorded resource's provider reference to the provider's inputs", async () => {
      const providerUrn = urn("pulumi:providers:aws", "cn");
      const [, queue] = fromRecorded([
        { type: "pulumi:providers:aws", name: "cn", urn: providerUrn, custom: true, inputs: { defaultTags: JSON.stringify({ tags: TAGS }) }, dependsOn: [] },
        { type: "aws:sqs/queue:Queue", name: "q", urn: urn("aws:sqs/queue:Queue", "q"), custom: true, inputs: {}, dependsOn: [], provider: `${providerUrn}::0f9c2e` },
      ]);
      assert.equal(queue.provider?.urn, providerUrn);
      await expectPass(rules.requiredTags, [queue]);
      await expectViolation(rules.requiredTags, [{ ...queue, provider: undefined }], /"q" is missing required tags/);
    });
  });
});
