import { strict as assert } from "node:assert";
import { fromRecorded, runPack, type AnalyzedResource } from "../policy/harness";
import { policies } from "../policy/rules";
import { runProgramUnderMocks } from "../tools/mock-program";

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
          "aws:lambda/permission:Permission",
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
        for (const p of ["lambda-reserved-concurrency", "sagemaker-transform-gpu-instance", "iam-no-aws-managed-full-access"]) {
          assert.ok(failed.has(p), `${p} did not fire; got ${[...failed].join(", ")}`);
        }
      });
    });
  }
});
