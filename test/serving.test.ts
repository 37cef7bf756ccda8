import { strict as assert } from "node:assert";
import { InvokeEndpointAsyncCommand, SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { mockClient } from "aws-sdk-client-mock";
import { parseStackConfig, StackConfigError } from "../config";
import { warmWindowOverlaps, warmWindowSchedules } from "../components/warmWindows";
import { fromRecorded, runPack } from "../policy/harness";
import { policies } from "../policy/rules";
import { runIdFault } from "../runtime/src/contract";
import { asyncEndpointJobControl, INVOKE_ENDPOINT_ASYNC_LIMITS } from "../trigger/async-job-control";
import { runProgramUnderMocks, type MockedResource } from "../tools/mock-program";
import { stackConfig } from "../tools/mock-program-mocks";
import { ASYNC_STACK, asyncStackConfig } from "./support/async-stack";

const WINDOW = { cycleHoursUtc: [0, 6, 12, 18], startOffsetMinutes: 200, durationMinutes: 60 };

function parse(stack: "dev" | "prod", overrides: Record<string, unknown>) {
  const raw = stackConfig(stack, overrides);
  return parseStackConfig({ stack, region: raw["aws:region"]!, raw });
}
function problems(stack: "dev" | "prod", overrides: Record<string, unknown>): string[] {
  try {
    parse(stack, overrides);
  } catch (e) {
    assert.ok(e instanceof StackConfigError, String(e));
    return e.problems;
  }
  assert.fail("config was accepted");
}

describe("serving mode (fuxi:serving)", () => {
  describe("config", () => {
    it("defaults to batch for every existing stack", () => {
      for (const stack of ["dev", "prod"] as const) {
        const cfg = parse(stack, {});
        assert.equal(cfg.serving.mode, "batch");
        assert.deepEqual(cfg.serving.warmWindows, []);
      }
    });

    it("accepts the async test stack (test/stacks/async.yaml) and ties maxInstances to the cap", () => {
      const cfg = parse("prod", asyncStackConfig());
      assert.equal(cfg.serving.mode, "async");
      assert.deepEqual(cfg.serving.warmWindows, [WINDOW]);
      assert.equal(cfg.transform.maxConcurrentJobs, 2);
      assert.equal(cfg.serving.maxInstances, 2, "default: the stack's cap (transform.maxConcurrentJobs)");
    });

    it("lists every serving problem in one error", () => {
      const found = problems("dev", {
        "fuxi:transform": { instanceType: "ml.p3.2xlarge" },
        "fuxi:serving": {
          mode: "async",
          maxInstances: 50,
          warmWindows: [
            WINDOW,
            { cycleHoursUtc: [3], startOffsetMinutes: 30, durationMinutes: 45 }, // 03:30-04:15 inside 03:20-04:20
            { cycleHoursUtc: [1, 1], startOffsetMinutes: 2000, durationMinutes: 1 },
          ],
          idle: true,
        },
      });
      const expected = [
        /^fuxi:serving\.idle: true is not a known setting/,
        /^fuxi:serving\.warmWindows\[2\]\.cycleHoursUtc: \[1,1\] names an hour twice/,
        /^fuxi:serving\.warmWindows\[2\]\.startOffsetMinutes: 2000 is out of range; expected an integer from 0 to 1439/,
        /^fuxi:serving\.warmWindows\[2\]\.durationMinutes: 1 is out of range; expected an integer from 5 to 720/,
      ];
      for (const re of expected) assert.ok(found.some((p) => re.test(p)), `missing ${re}; got:\n${found.join("\n")}`);
    });

    it("reports the cross-field rules: cap, overlaps, volume key, batch-only keys", () => {
      const asyncProblems = problems("dev", {
        "fuxi:transform": { instanceType: "ml.p3.2xlarge" },
        "fuxi:serving": { mode: "async", maxInstances: 50, warmWindows: [WINDOW, { cycleHoursUtc: [3], startOffsetMinutes: 30, durationMinutes: 45 }] },
      });
      assert.ok(asyncProblems.some((p) => /^fuxi:serving\.maxInstances: 50 is above transform\.maxConcurrentJobs \(1\); expected at most 1/.test(p)), asyncProblems.join("\n"));
      assert.ok(asyncProblems.some((p) => /^fuxi:serving\.warmWindows\[1\]: .* overlaps warmWindows\[0\] at 03:30 UTC/.test(p)), asyncProblems.join("\n"));
      assert.ok(asyncProblems.some((p) => /^fuxi:serving\.volumeKmsKeyArn: \(missing\) is required for ml\.p3\.2xlarge/.test(p)), asyncProblems.join("\n"));
      assert.equal(asyncProblems.length, 3, asyncProblems.join("\n"));

      const key = "arn:aws-cn:kms:cn-northwest-1:123456789012:key/0b7e8a3c-1111-2222-3333-444455556666";
      assert.deepEqual(problems("dev", { "fuxi:serving": { mode: "async", volumeKmsKeyArn: key } }), [
        `fuxi:serving.volumeKmsKeyArn: ${JSON.stringify(key)} cannot apply to ml.g4dn.xlarge (transform.instanceType): its NVMe instance storage is encrypted in hardware and CreateEndpointConfig rejects a KmsKeyId for it; expected no volumeKmsKeyArn`,
      ]);
      assert.equal(parse("dev", { "fuxi:transform": { instanceType: "ml.p3.2xlarge" }, "fuxi:serving": { mode: "async", volumeKmsKeyArn: key } }).serving.volumeKmsKeyArn, key);

      const batchProblems = problems("dev", { "fuxi:serving": { warmWindows: [WINDOW], maxInstances: 1 } });
      assert.deepEqual(batchProblems.map((p) => p.split(":")[1]!.split(" ")[0]), ["serving.warmWindows", "serving.maxInstances"]);
      assert.match(batchProblems[0]!, /applies only to serving\.mode "async"/);
    });
  });

  describe("InvokeEndpointAsync within its documented bounds", () => {
    it("the longest invocation timeout the config allows and the request TTL are valid InvokeEndpointAsync values", async () => {
      const max = parse("prod", { "fuxi:serving": asyncStackConfig()["fuxi:serving"], "fuxi:transform": { instanceType: "ml.g5.2xlarge", maxConcurrentJobs: 2, invocationTimeoutSeconds: 3600 } }).transform.invocationTimeoutSeconds;
      assert.ok(problems("prod", { "fuxi:transform": { invocationTimeoutSeconds: 3601 } }).some((p) => /^fuxi:transform\.invocationTimeoutSeconds: 3601 is out of range; expected an integer from 1 to 3600/.test(p)));
      const runtime = new SageMakerRuntimeClient({ region: "cn-northwest-1", credentials: { accessKeyId: "x", secretAccessKey: "x" } });
      const mock = mockClient(runtime);
      mock.on(InvokeEndpointAsyncCommand).resolves({ InferenceId: "fuxi-prod-2023101206-0123abcd" });
      const objects = new Map<string, unknown>();
      const store = {
        exists: async (k: string) => objects.has(k),
        listRunFolder: async () => { throw new Error("not used"); },
        putJson: async (k: string, v: unknown) => void objects.set(k, v),
        createJson: async (k: string, v: unknown) => (objects.has(k) ? false : (objects.set(k, v), true)),
        listKeys: async () => [],
        getJson: async (k: string) => objects.get(k),
      };
      const control = asyncEndpointJobControl({ runtime, store: store as never, endpointName: "fuxi-prod-async", requestsPrefix: "requests/", outputPrefix: "output/", now: () => new Date("2026-12-02T03:20:00Z") });
      await control.create({
        TransformJobName: "fuxi-prod-2023101206-0123abcd", ModelName: "m",
        TransformInput: { DataSource: { S3DataSource: { S3DataType: "S3Prefix", S3Uri: "s3://b/requests/fuxi-prod-2023101206-0123abcd.json" } }, ContentType: "application/json" },
        TransformOutput: { S3OutputPath: "s3://b/output/", Accept: "application/json" },
        TransformResources: { InstanceType: "ml.g5.2xlarge", InstanceCount: 1 },
        ModelClientConfig: { InvocationsTimeoutInSeconds: max, InvocationsMaxRetries: 1 },
      });
      const input = mock.commandCalls(InvokeEndpointAsyncCommand)[0]!.args[0].input;
      const within = (v: number | undefined, b: { min: number; max: number }) => v !== undefined && v >= b.min && v <= b.max;
      assert.equal(input.InvocationTimeoutSeconds, 3600);
      assert.ok(within(input.InvocationTimeoutSeconds, INVOKE_ENDPOINT_ASYNC_LIMITS.invocationTimeoutSeconds), `InvocationTimeoutSeconds ${input.InvocationTimeoutSeconds}`);
      assert.ok(within(input.RequestTTLSeconds, INVOKE_ENDPOINT_ASYNC_LIMITS.requestTtlSeconds), `RequestTTLSeconds ${input.RequestTTLSeconds}`);
      runtime.destroy();
    });
  });

  describe("warm windows", () => {
    it("become one start and one end schedule per window (UTC cron)", () => {
      assert.deepEqual(warmWindowSchedules(WINDOW), { start: "cron(20 3,9,15,21 * * ? *)", end: "cron(20 4,10,16,22 * * ? *)" });
      // Across midnight: 18:00 + 350 min = 23:50, + 30 min = 00:20 the next day.
      assert.deepEqual(warmWindowSchedules({ cycleHoursUtc: [18], startOffsetMinutes: 350, durationMinutes: 30 }), { start: "cron(50 23 * * ? *)", end: "cron(20 0 * * ? *)" });
    });

    it("overlaps are found on the 24-hour clock, across midnight too", () => {
      assert.deepEqual(warmWindowOverlaps([WINDOW]), []);
      assert.deepEqual(warmWindowOverlaps([{ cycleHoursUtc: [0, 1], startOffsetMinutes: 0, durationMinutes: 90 }]), [{ first: 0, second: 0, at: "01:00" }]);
      assert.deepEqual(warmWindowOverlaps([{ cycleHoursUtc: [23], startOffsetMinutes: 30, durationMinutes: 60 }, { cycleHoursUtc: [0], startOffsetMinutes: 15, durationMinutes: 10 }]), [{ first: 0, second: 1, at: "00:15" }]);
      assert.deepEqual(warmWindowOverlaps([{ cycleHoursUtc: [0], startOffsetMinutes: 0, durationMinutes: 60 }, { cycleHoursUtc: [1], startOffsetMinutes: 0, durationMinutes: 60 }]), [], "back to back is not an overlap");
    });

    it("no run folder may take the async results folder's name", () => {
      assert.match(runIdFault("_async") ?? "", /async endpoint/);
      assert.equal(runIdFault("2023101206"), null);
    });
  });

  describe("the program in async mode (test/stacks/async.yaml) under mocks", function () {
    this.timeout(180_000);
    let resources: MockedResource[];
    let outputs: Record<string, unknown>;
    const one = (type: string) => {
      const found = resources.filter((r) => r.type === type);
      assert.equal(found.length, 1, `expected one ${type}, found ${found.length}`);
      return found[0]!;
    };

    before(async () => {
      ({ resources, outputs } = await runProgramUnderMocks(ASYNC_STACK));
    });

    it("serves the same model (same image digest) from an async endpoint writing inside the output prefix", () => {
      const model = one("aws:sagemaker/model:Model");
      const config = one("aws:sagemaker/endpointConfiguration:EndpointConfiguration");
      const endpoint = one("aws:sagemaker/endpoint:Endpoint");
      assert.match(model.inputs.primaryContainer.image, /@sha256:[0-9a-f]{64}$/);
      assert.equal(config.inputs.productionVariants.length, 1);
      assert.equal(config.inputs.productionVariants[0].modelName, model.outputs.name);
      assert.equal(config.inputs.productionVariants[0].instanceType, "ml.g5.2xlarge");
      assert.equal(endpoint.inputs.endpointConfigName, config.outputs.name);
      const out = config.inputs.asyncInferenceConfig.outputConfig;
      const bucket = outputs.dataBucket as string;
      assert.equal(out.s3OutputPath, `s3://${bucket}/output/_async/results/`);
      assert.equal(out.s3FailurePath, `s3://${bucket}/output/_async/failures/`);
      assert.equal(out.notificationConfig.errorTopic, outputs.alertTopicArn, "failures go to the stack's alerts");
      assert.equal(out.notificationConfig.successTopic, outputs.asyncCompletionsTopicArn);
      assert.deepEqual(config.inputs.asyncInferenceConfig.clientConfig, { maxConcurrentInvocationsPerInstance: 1 });
      assert.equal(outputs.servingMode, "async");
      assert.equal(outputs.asyncEndpointName, "fuxi-prod-async");
    });

    it("scales from zero on a backlog, back to zero when idle, and holds one instance in each warm window", () => {
      const target = one("aws:appautoscaling/target:Target");
      assert.deepEqual([target.inputs.minCapacity, target.inputs.maxCapacity, target.inputs.resourceId], [0, 2, "endpoint/fuxi-prod-async/variant/forecast"]);
      const policies = resources.filter((r) => r.type === "aws:appautoscaling/policy:Policy");
      const tracking = policies.find((p) => p.inputs.policyType === "TargetTrackingScaling")!;
      assert.equal(tracking.inputs.targetTrackingScalingPolicyConfiguration.customizedMetricSpecification.metricName, "ApproximateBacklogSizePerInstance");
      assert.equal(tracking.inputs.targetTrackingScalingPolicyConfiguration.scaleInCooldown, 15 * 60);
      const step = policies.find((p) => p.inputs.policyType === "StepScaling")!;
      const alarm = resources.find((r) => r.type === "aws:cloudwatch/metricAlarm:MetricAlarm" && r.inputs.metricName === "HasBacklogWithoutCapacity")!;
      assert.deepEqual(alarm.inputs.alarmActions, [step.outputs.arn], "the backlog-without-capacity alarm adds the first instance");
      const scheduled = resources.filter((r) => r.type === "aws:appautoscaling/scheduledAction:ScheduledAction").map((r) => [r.inputs.schedule, r.inputs.scalableTargetAction.minCapacity, r.inputs.timezone]);
      assert.deepEqual(scheduled.sort(), [["cron(20 3,9,15,21 * * ? *)", 1, "Etc/UTC"], ["cron(20 4,10,16,22 * * ? *)", 0, "Etc/UTC"]]);
    });

    it("grants the execution role what the endpoint does, scoped to its topics, key and log group", () => {
      const grant = resources.find((r) => r.type === "aws:iam/rolePolicy:RolePolicy" && r.name === "async-execution")!;
      const doc = JSON.parse(grant.inputs.policy);
      const sids = Object.fromEntries(doc.Statement.map((s: any) => [s.Sid, s]));
      assert.deepEqual(sids.PublishInvocationOutcomes.Resource, [outputs.alertTopicArn, outputs.asyncCompletionsTopicArn]);
      assert.match(sids.EndpointLogStreams.Resource, /log-group:\/aws\/sagemaker\/Endpoints\/fuxi-prod-async:log-stream:\*$/);
      assert.equal(grant.inputs.role, "fuxi-prod-sagemaker");
    });

    it("the dispatcher invokes only this endpoint and starts no transform job", () => {
      const fn = resources.find((r) => r.type === "aws:lambda/function:Function")!;
      assert.equal(fn.inputs.environment.variables.SERVING_MODE, "async");
      assert.equal(fn.inputs.environment.variables.ASYNC_ENDPOINT_NAME, "fuxi-prod-async");
      const doc = JSON.parse(resources.find((r) => r.type === "aws:iam/rolePolicy:RolePolicy" && r.name === "trigger-role-policy")!.inputs.policy);
      const actions = doc.Statement.flatMap((s: any) => s.Action);
      assert.ok(!actions.some((a: string) => /TransformJob/.test(a)), actions.join(", "));
      const invoke = doc.Statement.find((s: any) => s.Sid === "InvokeOnlyThisEndpoint");
      assert.deepEqual([invoke.Action, invoke.Resource], [["sagemaker:InvokeEndpointAsync"], "arn:aws-cn:sagemaker:cn-northwest-1:123456789012:endpoint/fuxi-prod-async"]);
      assert.equal(doc.Statement.find((s: any) => s.Sid === "ReadAsyncOutcomes").Resource, `arn:aws-cn:s3:::${outputs.dataBucket}/output/_async/*`);
    });

    it("prices the endpoint: a day's warm windows and runs at fuxi:cost.endpointInstanceHour (test/stacks/async.yaml)", () => {
      assert.deepEqual((outputs.costModel as { prices: { endpointInstanceHour: unknown } }).prices.endpointInstanceHour, { "ml.g5.2xlarge": 18 });
      const perDay = (outputs.steadyStateStorage as { perDay: Record<string, string> }).perDay;
      // 4 windows x 60 min = 4 h x CNY 18 = 72.00; 4 runs x at most (10 + 60 + 15) min = 340 min x 18 / 60 = 102.00.
      assert.match(perDay.warm!, /^CNY 72\.00 \(4 x 60 min: fuxi:serving\.warmWindows, 240 instance-minutes a day on 1 x ml\.g5\.2xlarge/);
      assert.match(perDay.instance!, /^CNY 102\.00 \(4 x 1 h 25 min on 1 x ml\.g5\.2xlarge: 10 min 00 s start-up \+ the 1 h 00 min invocation timeout \+ the 15 min scale-in cooldown/);
      assert.match(perDay.storage!, /^CNY [\d,]+\.\d\d \(steady state\)$/);
    });

    it("passes the whole policy pack with zero violations", async () => {
      const { violations } = await runPack(policies, fromRecorded(resources));
      assert.deepEqual(violations.map((v) => `${v.policy}: ${v.message}`), []);
    });

    it("batch stacks create none of the endpoint resources", async () => {
      const batch = await runProgramUnderMocks({ stack: "dev" });
      const types = new Set(batch.resources.map((r) => r.type));
      for (const t of ["aws:sagemaker/endpoint:Endpoint", "aws:sagemaker/endpointConfiguration:EndpointConfiguration", "aws:appautoscaling/target:Target"]) assert.ok(!types.has(t), t);
      assert.equal(batch.outputs.servingMode, undefined);
    });
  });
});
