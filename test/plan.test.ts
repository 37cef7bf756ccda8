import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { PLAN_STACKS, planPath, renderPlan } from "../tools/plan";
import { runProgramUnderMocks, type MockedResource, type MockRunResult } from "../tools/mock-program";
import { repoPathIn } from "./support/repo-paths";

const REPO_ROOT = join(__dirname, "..");

function resource(partial: Partial<MockedResource> & Pick<MockedResource, "type" | "name">): MockedResource {
  return {
    urn: `urn:pulumi:dev::fuxi-sagemaker::${partial.type}::${partial.name}`,
    custom: true,
    inputs: {},
    outputs: {},
    secretInputs: [],
    dependsOn: [],
    propertyDependencies: {},
    ...partial,
  } as MockedResource;
}

function firstDifference(a: string, b: string): string {
  const al = a.split("\n");
  const bl = b.split("\n");
  for (let i = 0; i < Math.max(al.length, bl.length); i++) {
    if (al[i] !== bl[i]) return `line ${i + 1}: committed ${JSON.stringify(al[i] ?? "<end of file>")}, program gives ${JSON.stringify(bl[i] ?? "<end of file>")}`;
  }
  return "no difference";
}

describe("offline plan (tools/plan.ts)", function () {
  this.timeout(180_000);

  describe("the committed plans", () => {
    const runs = new Map<string, MockRunResult>();
    before(async () => {
      await Promise.all(PLAN_STACKS.map(async (stack) => runs.set(stack, await runProgramUnderMocks({ stack }))));
    });

    for (const stack of PLAN_STACKS) {
      it(`plans/${stack}.md matches the program (else run \`npm run plan\`)`, () => {
        const expected = renderPlan(stack, runs.get(stack)!);
        const file = planPath(stack);
        let committed: string;
        try {
          committed = readFileSync(file, "utf8");
        } catch {
          assert.fail(`${relative(REPO_ROOT, file)} is missing: run \`npm run plan\` and commit it`);
        }
        if (committed !== expected) {
          assert.fail(`${relative(REPO_ROOT, file)} is stale: run \`npm run plan\` and commit the result (${firstDifference(committed, expected)})`);
        }
      });

      it(`plans/${stack}.md holds no secret value and no machine-specific path`, () => {
        const text = readFileSync(planPath(stack), "utf8");
        const run = runs.get(stack)!;
        const secrets = run.resources.flatMap((r) => r.secretInputs.map((p) => p.split(".").reduce<any>((o, k) => o?.[k], r.inputs)));
        assert.ok(secrets.length > 0, "expected the program to have at least one secret input (the registry password)");
        for (const s of secrets) assert.ok(!text.includes(String(s)), `a secret value appears in plans/${stack}.md`);
        assert.equal(repoPathIn(text), undefined, `plans/${stack}.md contains an absolute path of this checkout`);
        assert.ok(!/@sha256:[0-9a-f]{64}/.test(text), "image digests must be placeholders");
      });
    }
  });

  describe("rendering", () => {
    const result: MockRunResult = {
      outputs: { bucket: "b" },
      resources: [
        resource({ type: "pulumi:pulumi:Stack", name: "fuxi-sagemaker-dev", custom: false }),
        resource({ type: "fuxi:storage:DataBucket", name: "data", custom: false, parent: "urn:pulumi:dev::fuxi-sagemaker::pulumi:pulumi:Stack::fuxi-sagemaker-dev" }),
        resource({ type: "aws:s3/bucket:Bucket", name: "data", parent: "urn:pulumi:dev::fuxi-sagemaker::fuxi:storage:DataBucket::data", inputs: { tags: { "fuxi:stack": "dev" } } }),
        resource({
          type: "aws:s3/bucketPolicy:BucketPolicy",
          name: "data-tls",
          parent: "urn:pulumi:dev::fuxi-sagemaker::fuxi:storage:DataBucket::data",
          dependsOn: ["urn:pulumi:dev::fuxi-sagemaker::aws:s3/bucket:Bucket::data"],
          inputs: { bucket: "data-1a2b3c4", policy: '{"Statement":[{"Effect":"Deny","Resource":"arn:aws-cn:s3:::data-1a2b3c4/*"}]}' },
        }),
        resource({
          type: "docker:index/image:Image",
          name: "image",
          inputs: {
            build: { context: join(REPO_ROOT, "runtime") },
            imageName: "1.dkr.ecr/x:src-0123456789abcdef",
            registry: { password: "hunter2-secret", username: "AWS" },
          },
          secretInputs: ["registry.password"],
        }),
        resource({ type: "aws:lambda/function:Function", name: "fn", inputs: { code: { __archive: { assets: { "index.js": { __asset: { text: "bundle" } } } } }, image: `r@sha256:${"f".repeat(64)}` } }),
      ],
    };

    it("masks secrets, relativises paths and replaces deploy-time values with placeholders", () => {
      const text = renderPlan("dev", result);
      assert.ok(!text.includes("hunter2-secret"));
      assert.match(text, /password: "\[secret\]"/);
      assert.match(text, /context: \.\/runtime\n/);
      assert.match(text, /bucket: data-<auto>\n/);
      assert.match(text, /arn:aws-cn:s3:::data-<auto>\/\*/);
      assert.match(text, /x:src-<source hash>/);
      assert.match(text, /r@sha256:<digest>/);
      assert.match(text, /code: "\[archive of index\.js \(built from source\)\]"/);
      assert.ok(!text.includes("bundle"));
    });

    it("expands JSON documents and nests resources under their parent, with dependencies", () => {
      const text = renderPlan("dev", result);
      assert.match(text, /policy:\n {2}\(JSON\):\n {4}Statement:\n {6}- Effect: Deny/);
      assert.match(text, /### fuxi:storage:DataBucket `data`\n\n#### aws:s3\/bucket:Bucket `data`/);
      assert.match(text, /- depends on: aws:s3\/bucket:Bucket `data`/);
      assert.match(text, /\| `aws:s3\/bucket:Bucket` \| 1 \|/);
    });

    it("does not depend on the order resources were registered in", () => {
      const reversed = { ...result, resources: [...result.resources].reverse() };
      assert.equal(renderPlan("dev", reversed), renderPlan("dev", result));
    });
  });
});
