import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { PolicyPackConfig } from "@pulumi/policy";
import { parse } from "yaml";
import { fromRecorded, runPack, type AnalyzedResource } from "../policy/harness";
import { INSTANCE_TYPE_DEFAULTS, policies } from "../policy/rules";
import { runProgramUnderMocks } from "../tools/mock-program";

/** The example --policy-pack-config in docs/policy.md, checked against the schemas. */
function documentedConfig(): PolicyPackConfig {
  const doc = readFileSync(join(__dirname, "..", "docs", "policy.md"), "utf8");
  const block = /```json\n([\s\S]*?)\n```/.exec(doc);
  assert.ok(block, "docs/policy.md has no json config example");
  const config = JSON.parse(block[1]) as PolicyPackConfig;
  for (const [name, value] of Object.entries(config)) {
    const policy = policies.find((p) => p.name === name);
    assert.ok(policy, `docs/policy.md configures unknown policy ${name}`);
    if (typeof value === "string") {
      assert.ok(["advisory", "mandatory", "disabled", "remediate"].includes(value), `${name}: ${value}`);
      continue;
    }
    for (const [key, v] of Object.entries(value)) {
      if (key === "enforcementLevel") continue;
      const schema: { type?: unknown } | undefined = policy.configSchema?.properties[key];
      assert.ok(schema, `docs/policy.md: ${name} has no config property ${key}`);
      const type = Array.isArray(v) ? "array" : Number.isInteger(v) ? "integer" : typeof v;
      assert.equal(type, schema.type, `docs/policy.md: ${name}.${key} should be ${schema.type}`);
    }
  }
  return config;
}

/**
 * The project's own stacks, run under mocks, must pass the whole pack: a
 * component that regresses (a FullAccess policy, a mutable tag, a missing
 * bucket companion) fails here before it reaches a pull request preview.
 */
describe("policy pack on the project's own stacks", function () {
  this.timeout(180_000);

  for (const stack of ["dev", "prod"] as const) {
    describe(stack, () => {
      let resources: AnalyzedResource[];
      before(async () => {
        resources = fromRecorded((await runProgramUnderMocks({ stack })).resources);
      });

      it("has the resources the rules exist for (so zero violations is not vacuous)", () => {
        const count = (type: string) => resources.filter((r) => r.type === type).length;
        for (const type of [
          "aws:s3/bucket:Bucket",
          "aws:iam/role:Role",
          "aws:iam/rolePolicy:RolePolicy",
          "aws:ecr/repository:Repository",
          "aws:lambda/function:Function",
          "aws:lambda/eventSourceMapping:EventSourceMapping",
          "aws:sqs/queue:Queue",
          "aws:sagemaker/model:Model",
        ]) {
          assert.ok(count(type) >= 1, `${stack} has no ${type}`);
        }
      });

      it("passes every policy with zero violations and nothing left unchecked", async () => {
        const { violations, unknowns } = await runPack(policies, resources);
        assert.deepEqual(
          violations.map((v) => `${v.policy}: ${v.message}`),
          [],
        );
        assert.deepEqual(unknowns, []);
      });

      it("checks the transform instance type of the stack config (it reaches the pack through the trigger's environment)", () => {
        const config = parse(readFileSync(join(__dirname, "..", `Pulumi.${stack}.yaml`), "utf8")).config;
        const configured = config["fuxi:transform"]?.instanceType;
        assert.ok(INSTANCE_TYPE_DEFAULTS.allowedInstanceTypes.includes(configured), `Pulumi.${stack}.yaml fuxi:transform.instanceType ${configured}`);
        const seen = resources.filter((r) => r.type === "aws:lambda/function:Function").map((r) => r.props.environment?.variables?.TRANSFORM_INSTANCE_TYPE);
        assert.deepEqual(seen, [configured]);
      });

      it("passes with the pack config its workflows pass (policy/config/<stack>.json)", async () => {
        const config = JSON.parse(readFileSync(join(__dirname, "..", "policy", "config", `${stack}.json`), "utf8")) as PolicyPackConfig;
        const { violations } = await runPack(policies, resources, config);
        assert.deepEqual(violations.map((v) => `${v.policy}: ${v.message}`), []);
      });

      it("passes with the example config of docs/policy.md too", async () => {
        const { violations } = await runPack(policies, resources, documentedConfig());
        assert.deepEqual(violations.map((v) => `${v.policy}: ${v.message}`), []);
      });

      it("fails when a component regresses", async () => {
        const regressed = resources.map((r) =>
          r.type === "aws:lambda/function:Function"
            ? { ...r, props: { ...r.props, reservedConcurrentExecutions: undefined, environment: { variables: { ...r.props.environment.variables, TRANSFORM_INSTANCE_TYPE: "ml.c5.xlarge" } } } }
            : r.type === "aws:iam/role:Role"
              ? { ...r, props: { ...r.props, managedPolicyArns: ["arn:aws-cn:iam::aws:policy/AmazonSageMakerFullAccess"] } }
              : r,
        );
        const { violations } = await runPack(policies, regressed);
        const failed = new Set(violations.map((v) => v.policy));
        for (const p of ["lambda-reserved-concurrency", "sagemaker-transform-gpu-instance", "iam-no-broad-managed-policy"]) {
          assert.ok(failed.has(p), `${p} did not fire; got ${[...failed].join(", ")}`);
        }
      });
    });
  }
});
