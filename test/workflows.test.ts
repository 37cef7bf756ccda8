import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { defaultBaseImage } from "../config";
import { policies } from "../policy/rules";
import { baseImageRegistry } from "../tools/base-image-registry";

const REPO_ROOT = join(__dirname, "..");
const WORKFLOWS = join(REPO_ROOT, ".github", "workflows");
const VALIDATOR = join(REPO_ROOT, "node_modules", "@action-validator", "cli", "cli.mjs");

function validate(file: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [VALIDATOR, file], { cwd: REPO_ROOT }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, output: stdout + stderr });
    });
  });
}

type Step = { uses?: string; run?: string; with?: Record<string, unknown>; env?: Record<string, string>; if?: string; name?: string };
type Job = { steps: Step[]; needs?: string | string[]; environment?: string; permissions?: Record<string, string>; strategy?: { matrix?: Record<string, unknown> } };
type Workflow = { on: Record<string, any>; jobs: Record<string, Job>; permissions?: Record<string, string> };

function load(name: string): { text: string; wf: Workflow } {
  const text = readFileSync(join(WORKFLOWS, name), "utf8");
  return { text, wf: parse(text) as Workflow };
}
const stepUsing = (job: Job, action: string) => job.steps.filter((s) => s.uses?.startsWith(`${action}@`));

describe("GitHub workflows", function () {
  this.timeout(60_000);
  const files = readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f));

  it("exist: one for pull requests, one for deploys", () => {
    assert.deepEqual(files.sort(), ["deploy.yml", "pull-request.yml"]);
  });

  for (const file of files) {
    it(`${file} passes action-validator`, async () => {
      const { code, output } = await validate(join(WORKFLOWS, file));
      assert.equal(code, 0, output);
    });
  }

  it("action-validator rejects a broken workflow (the check can fail)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wf-"));
    try {
      const bad = join(dir, "bad.yml");
      writeFileSync(bad, "on: push\njobs:\n  a:\n    runs-onn: ubuntu-24.04\n    steps: 3\n");
      const { code, output } = await validate(bad);
      assert.notEqual(code, 0);
      assert.match(output, /runs-onn/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("pins every action to a full commit SHA with its version in a comment", () => {
    for (const file of files) {
      const { text } = load(file);
      const uses = [...text.matchAll(/uses:\s*(\S+)(.*)$/gm)];
      assert.ok(uses.length > 0, file);
      for (const [, ref, rest] of uses) {
        assert.match(ref, /^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/, `${file}: ${ref} is not pinned to a commit`);
        assert.match(rest, /# v\d+\.\d+\.\d+/, `${file}: ${ref} has no version comment`);
      }
    }
  });

  it("uses no long-lived AWS keys, only OIDC role assumption in the aws-cn partition", () => {
    for (const file of files) {
      const { text, wf } = load(file);
      assert.doesNotMatch(text, /aws-access-key-id|aws-secret-access-key|AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID/, file);
      for (const [name, job] of Object.entries(wf.jobs)) {
        for (const step of stepUsing(job, "aws-actions/configure-aws-credentials")) {
          assert.equal(job.permissions?.["id-token"], "write", `${file} ${name}: OIDC needs id-token: write`);
          assert.match(String(step.with?.["role-to-assume"]), /^\$\{\{ vars\.[A-Z_]+ \}\}$/, `${file} ${name}: role ARN must come from a repository variable`);
          assert.equal(step.with?.["aws-region"], "cn-northwest-1");
          assert.equal(step.with?.audience, "sts.amazonaws.com.cn");
        }
      }
      assert.match(text, /arn:aws-cn:iam::/, `${file}: document the aws-cn role ARN form`);
    }
  });

  it("pull requests: per stack, install and test as .ci/run does, then preview --diff with the policy pack, commenting on the PR", () => {
    const { wf } = load("pull-request.yml");
    assert.ok("pull_request" in wf.on);
    const job = wf.jobs.preview;
    assert.deepEqual(job.strategy?.matrix?.stack, ["dev", "prod"]);
    assert.equal(job.permissions?.["pull-requests"], "write");
    const runs = job.steps.map((s) => s.run ?? "");
    const ci = runs.findIndex((r) => r.trim() === "./.ci/run");
    assert.ok(ci >= 0, "tests run through .ci/run");
    assert.match(readFileSync(join(REPO_ROOT, ".ci", "run"), "utf8"), /^npm ci\n[\s\S]*^npm test$/m, ".ci/run runs the README's two commands");
    const root = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8"));
    assert.match(root.scripts.postinstall, /npm ci --prefix policy/, "npm ci at the root installs the policy pack");
    const [pulumi] = stepUsing(job, "pulumi/actions");
    assert.ok(pulumi, "uses pulumi/actions");
    assert.ok(job.steps.indexOf(pulumi) > ci, "preview runs after the tests");
    assert.equal(pulumi.with?.command, "preview");
    assert.equal(pulumi.with?.["stack-name"], "${{ matrix.stack }}");
    assert.equal(pulumi.with?.diff, true);
    assert.equal(pulumi.with?.["comment-on-pr"], true);
    assert.equal(pulumi.with?.policyPacks, "policy");
    const onFailure = job.steps.find((st) => /gh pr comment/.test(st.run ?? ""));
    assert.match(String(onFailure?.if), /failure\(\) && steps\.preview\.outcome == 'failure'/, "a failed preview is pointed out on the pull request");
    assert.ok(stepUsing(job, "actions/setup-node").length === 1);
    assert.ok(stepUsing(job, "actions/checkout").length === 1);
  });

  it("main: pulumi up dev, then prod behind the prod environment", () => {
    const { wf } = load("deploy.yml");
    assert.deepEqual(wf.on.push?.branches, ["main"]);
    const dev = wf.jobs["up-dev"];
    const prod = wf.jobs["up-prod"];
    assert.equal(dev.environment, "dev");
    assert.equal(prod.environment, "prod");
    assert.deepEqual([prod.needs].flat(), ["up-dev"]);
    assert.deepEqual([dev.needs].flat(), ["test"]);
    for (const [stack, job] of [["dev", dev], ["prod", prod]] as const) {
      const pulumi = stepUsing(job, "pulumi/actions").at(-1)!;
      assert.equal(pulumi.with?.command, "up");
      assert.equal(pulumi.with?.["stack-name"], stack);
      assert.equal(pulumi.with?.policyPacks, "policy");
      const install = job.steps.find((s) => /npm ci/.test(s.run ?? ""));
      assert.equal(install?.env?.ONNXRUNTIME_NODE_INSTALL, "skip", `${stack}: install as .ci/run does`);
    }
  });

  it("deploys: a gating preview with the pack, the image-store check and the base-image login come before up, in the same job", () => {
    const { wf } = load("deploy.yml");
    for (const stack of ["dev", "prod"]) {
      const job = wf.jobs[`up-${stack}`];
      const steps = job.steps;
      const [preview, up] = stepUsing(job, "pulumi/actions");
      assert.equal(preview?.with?.command, "preview", `${stack}: the first pulumi step is the gating preview`);
      assert.equal(up?.with?.command, "up");
      for (const p of [preview!, up!]) {
        assert.equal(p.with?.["stack-name"], stack);
        assert.equal(p.with?.policyPacks, "policy");
        assert.equal(p.with?.policyPackConfigs, `policy/config/${stack}.json`);
        assert.equal(p.with?.upsert, true, "stacks are created on first use");
        assert.equal(p.with?.["secrets-provider"], "${{ vars.PULUMI_SECRETS_PROVIDER }}");
      }
      const at = (pred: (s: Step) => boolean) => steps.findIndex(pred);
      const store = at((s) => /check-docker-image-store\.sh/.test(s.run ?? ""));
      const login = at((s) => /docker login --username AWS --password-stdin/.test(s.run ?? ""));
      const guard = at((s) => /PULUMI_SECRETS_PROVIDER is empty/.test(s.run ?? ""));
      assert.ok(guard >= 0 && guard < steps.indexOf(preview!), `${stack}: a self-managed backend without a secrets provider fails first`);
      assert.ok(steps.indexOf(preview!) < store && store < login && login < steps.indexOf(up!), `${stack}: preview, image-store check, login, up`);
      assert.match(steps[login]!.run!, new RegExp(`tools/base-image-registry\\.ts ${stack}`));
    }
    const { wf: pr } = load("pull-request.yml");
    const [preview] = stepUsing(pr.jobs.preview, "pulumi/actions");
    assert.equal(preview?.with?.upsert, true);
    assert.equal(preview?.with?.policyPackConfigs, "policy/config/${{ matrix.stack }}.json");
  });

  it("the policy pack configs the workflows pass exist and match the rules' schemas", async () => {
    for (const stack of ["dev", "prod"]) {
      const config = JSON.parse(readFileSync(join(REPO_ROOT, "policy", "config", `${stack}.json`), "utf8")) as Record<string, Record<string, unknown>>;
      for (const [name, value] of Object.entries(config)) {
        const policy = policies.find((p) => p.name === name);
        assert.ok(policy, `policy/config/${stack}.json configures unknown policy ${name}`);
        for (const key of Object.keys(value)) assert.ok(policy.configSchema?.properties[key], `${name} has no config ${key}`);
      }
    }
  });

  describe("the Docker image-store check (.github/scripts/check-docker-image-store.sh)", () => {
    const script = join(REPO_ROOT, ".github", "scripts", "check-docker-image-store.sh");
    function withFakeDocker(driverStatus: string): Promise<{ code: number; output: string }> {
      const dir = mkdtempSync(join(tmpdir(), "docker-"));
      const fake = join(dir, "docker");
      writeFileSync(fake, `#!/bin/sh\ncase "$*" in *DriverStatus*) echo '${driverStatus}';; *) echo overlayfs;; esac\n`, { mode: 0o755 });
      return new Promise((resolve) => {
        execFile("bash", [script], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } }, (error, stdout, stderr) => {
          rmSync(dir, { recursive: true, force: true });
          resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, output: stdout + stderr });
        });
      });
    }
    it("fails clearly on the containerd image store (OCI manifests)", async () => {
      const { code, output } = await withFakeDocker('[["driver-type","io.containerd.snapshotter.v1"]]');
      assert.equal(code, 1);
      assert.match(output, /containerd image store, which pushes OCI manifests; SageMaker rejects them/);
      assert.match(output, /containerd-snapshotter": false/);
    });
    it("passes on the classic store", async () => {
      const { code, output } = await withFakeDocker('[["Backing Filesystem","extfs"],["Supports d_type","true"]]');
      assert.equal(code, 0, output);
      assert.match(output, /classic/);
    });
  });

  it("the base-image registry to log in to is the region's Deep Learning Containers account", async () => {
    assert.deepEqual(baseImageRegistry(defaultBaseImage("cn-northwest-1")), { host: "727897471807.dkr.ecr.cn-northwest-1.amazonaws.com.cn", region: "cn-northwest-1" });
    assert.deepEqual(baseImageRegistry(defaultBaseImage("us-east-1")), { host: "763104351884.dkr.ecr.us-east-1.amazonaws.com", region: "us-east-1" });
    assert.equal(baseImageRegistry("docker.io/library/ubuntu:22.04"), undefined);
  });

  it("names only stacks and a policy pack that exist", () => {
    for (const stack of ["dev", "prod"]) assert.ok(existsSync(join(REPO_ROOT, `Pulumi.${stack}.yaml`)), `Pulumi.${stack}.yaml`);
    assert.ok(existsSync(join(REPO_ROOT, "policy", "PulumiPolicy.yaml")));
  });
});
