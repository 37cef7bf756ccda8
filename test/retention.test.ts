import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { NONCURRENT_VERSION_DAYS, outputRetentionRule } from "../components/dataBucket";
import { fromRecorded, runStackPolicy } from "../policy/harness";
import { s3OutputRetentionOnProduction, stackOfUrn } from "../policy/rules";
import { runProgramUnderMocks, wellKeptBucket, type MockRunResult } from "../tools/mock-program";

const LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration";
const rulesOf = (run: MockRunResult) => run.resources.find((r) => r.type === LIFECYCLE)!.inputs.rules as Record<string, any>[];
const prodYaml = () => parse(readFileSync(join(__dirname, "..", "Pulumi.prod.yaml"), "utf8")).config as Record<string, any>;

describe("output retention (fuxi:dataBucket.outputRetention)", function () {
  this.timeout(180_000);

  describe("the lifecycle rule", () => {
    it("transitions and expires the output prefix, each step only when set", () => {
      assert.deepEqual(outputRetentionRule("output/", { infrequentAccessAfterDays: 30, archiveAfterDays: 90, archiveClass: "GLACIER", expireAfterDays: 365 }), {
        id: "forecast-output-retention",
        status: "Enabled",
        filter: { prefix: "output/" },
        transitions: [
          { days: 30, storageClass: "STANDARD_IA" },
          { days: 90, storageClass: "GLACIER" },
        ],
        expiration: { days: 365 },
      });
      assert.deepEqual(outputRetentionRule("fc/", { expireAfterDays: 14 }), { id: "forecast-output-retention", status: "Enabled", filter: { prefix: "fc/" }, expiration: { days: 14 } });
      assert.deepEqual(outputRetentionRule("output/", { archiveAfterDays: 0 })!.transitions, [{ days: 0, storageClass: "GLACIER_IR" }]);
      assert.equal(outputRetentionRule("output/", undefined), undefined);
    });
  });

  describe("the program", () => {
    let prod: MockRunResult;
    let dev: MockRunResult;
    before(async () => {
      [prod, dev] = await Promise.all([runProgramUnderMocks({ stack: "prod" }), runProgramUnderMocks({ stack: "dev" })]);
    });

    it("prod: the bucket's lifecycle carries Pulumi.prod.yaml's retention on the output prefix, beside the existing rules", () => {
      const retention = prodYaml()["fuxi:dataBucket"].outputRetention;
      const rules = rulesOf(prod);
      assert.deepEqual(rules.map((r) => r.id), ["abort-incomplete-multipart-uploads", "expire-forecast-requests", "forecast-output-retention"]);
      const rule = rules.find((r) => r.id === "forecast-output-retention")!;
      assert.deepEqual(rule.filter, { prefix: "output/" });
      assert.deepEqual(rule.transitions, [
        { days: retention.infrequentAccessAfterDays, storageClass: "STANDARD_IA" },
        { days: retention.archiveAfterDays, storageClass: retention.archiveClass },
      ]);
      assert.deepEqual(rule.expiration, { days: retention.expireAfterDays });
      assert.equal(rules[0]!.noncurrentVersionExpiration.noncurrentDays, NONCURRENT_VERSION_DAYS);
    });

    it("prod: the steady-state storage output follows the cadence and the rule", () => {
      const s = prod.outputs.steadyStateStorage as Record<string, any>;
      assert.equal(s.cadence, "4 runs a day (fuxi:forecast.runsPerDay)");
      assert.deepEqual(s.byClass, { STANDARD: "1.90 TiB", STANDARD_IA: "3.81 TiB", GLACIER_IR: "19.4 TiB" });
      assert.equal(s.total, "25.1 TiB");
      assert.match(s.monthlyStorageCost, /^cost unknown: set fuxi:cost/);
      const model = prod.outputs.costModel as Record<string, any>;
      assert.equal(model.prices, null);
      assert.deepEqual({ type: model.instanceType, steps: model.steps, runsPerDay: model.runsPerDay }, { type: "ml.g5.2xlarge", steps: 60, runsPerDay: 4 });
    });

    it("prices the steady state once fuxi:cost is set", async () => {
      const priced = await runProgramUnderMocks({
        stack: "prod",
        config: { "fuxi:cost": { currency: "CNY", instanceHour: { "ml.g5.2xlarge": 15 }, storageGbMonth: { STANDARD: 0.2, STANDARD_IA: 0.1, GLACIER_IR: 0.04 } } },
      });
      // 4 runs/day x 16.245 GiB: 30 d x 0.2 + 60 d x 0.1 + 305 d x 0.04 per GB, per day of runs.
      const perRunGb = (60 * 290_746_611) / 2 ** 30;
      const expected = 4 * perRunGb * (30 * 0.2 + 60 * 0.1 + 305 * 0.04);
      const shown = (priced.outputs.steadyStateStorage as Record<string, any>).monthlyStorageCost as string;
      assert.equal(shown, `CNY ${expected.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`);
    });

    it("dev: a short expiry on the output prefix", () => {
      const rule = rulesOf(dev).find((r) => r.id === "forecast-output-retention")!;
      assert.deepEqual(rule, { id: "forecast-output-retention", status: "Enabled", filter: { prefix: "output/" }, expiration: { days: 14 } });
    });

    it("without outputRetention the bucket keeps its two rules and the output says the storage is unbounded", async () => {
      const { outputRetention: _, ...bucket } = prodYaml()["fuxi:dataBucket"];
      const run = await runProgramUnderMocks({ stack: "prod", config: { "fuxi:dataBucket": bucket } });
      assert.deepEqual(rulesOf(run).map((r) => r.id), ["abort-incomplete-multipart-uploads", "expire-forecast-requests"]);
      assert.match((run.outputs.steadyStateStorage as Record<string, any>).total, /^unbounded: grows by 23\.\d TiB a year/);
    });

    it("the committed plans show the retention rules and the steady state (npm run plan)", () => {
      const plan = readFileSync(join(__dirname, "..", "plans", "prod.md"), "utf8");
      assert.match(plan, /id: forecast-output-retention\n {4}status: Enabled\n {4}transitions:\n {6}- days: 30\n {8}storageClass: STANDARD_IA\n {6}- days: 90\n {8}storageClass: GLACIER_IR/);
      assert.match(plan, /Output `steadyStateStorage`:[\s\S]*total: 25\.1 TiB/);
      assert.match(readFileSync(join(__dirname, "..", "plans", "dev.md"), "utf8"), /expiration:\n {6}days: 14\n {4}filter:\n {6}prefix: output\/\n {4}id: forecast-output-retention/);
    });

    describe("policy s3-output-retention-on-production (advisory)", () => {
      it("is advisory and reads the stack from the URN", () => {
        assert.equal(s3OutputRetentionOnProduction.enforcementLevel, "advisory");
        assert.equal(stackOfUrn("urn:pulumi:prod::fuxi-sagemaker::aws:s3/bucket:Bucket::b"), "prod");
      });

      it("passes prod with its retention, and dev without any", async () => {
        assert.deepEqual((await runStackPolicy(s3OutputRetentionOnProduction, fromRecorded(prod.resources))).violations, []);
        const { outputRetention: _, ...bucket } = parse(readFileSync(join(__dirname, "..", "Pulumi.dev.yaml"), "utf8")).config["fuxi:dataBucket"];
        const devBare = await runProgramUnderMocks({ stack: "dev", config: { "fuxi:dataBucket": bucket } });
        assert.deepEqual((await runStackPolicy(s3OutputRetentionOnProduction, fromRecorded(devBare.resources))).violations, []);
      });

      it("warns on prod without retention, on the bucket, and on a stack named production by config", async () => {
        const { outputRetention: _, ...bucket } = prodYaml()["fuxi:dataBucket"];
        const bare = await runProgramUnderMocks({ stack: "prod", config: { "fuxi:dataBucket": bucket } });
        const { violations } = await runStackPolicy(s3OutputRetentionOnProduction, fromRecorded(bare.resources));
        assert.equal(violations.length, 1);
        assert.match(violations[0]!.message, /^aws:s3\/bucket:Bucket "data": production stack "prod" keeps every forecast under output\/ in S3 Standard forever/);
        assert.match(violations[0]!.urn!, /aws:s3\/bucket:Bucket::data$/);
        const devBare = await runProgramUnderMocks({ stack: "dev", config: { "fuxi:dataBucket": { forceDestroy: true } } });
        const asProduction = await runStackPolicy(s3OutputRetentionOnProduction, fromRecorded(devBare.resources), { "s3-output-retention-on-production": { productionStacks: ["dev"] } });
        assert.equal(asProduction.violations.length, 1);
      });

      it("does not count the requests rule or a rule for another prefix as output retention", async () => {
        // The analyzer sees a resource's outputs once known (the harness prefers them): change both.
        const changeRule = (change: (rule: Record<string, any>) => Record<string, any>) =>
          fromRecorded(prod.resources).map((r) => {
            if (r.type !== LIFECYCLE) return r;
            const rules = (r.props.rules as Record<string, any>[]).map((x) => (x.id === "forecast-output-retention" ? change(x) : x));
            return { ...r, props: { ...r.props, rules }, outputs: { ...(r.outputs ?? r.props), rules } };
          });
        assert.equal((await runStackPolicy(s3OutputRetentionOnProduction, changeRule((x) => ({ ...x, filter: { prefix: "output/2024" } })))).violations.length, 1);
        assert.equal((await runStackPolicy(s3OutputRetentionOnProduction, changeRule((x) => ({ ...x, status: "Disabled" })))).violations.length, 1);
        assert.equal((await runStackPolicy(s3OutputRetentionOnProduction, changeRule((x) => ({ ...x, filter: { prefix: "" } })))).violations.length, 0, "a whole-bucket rule covers the output");
      });

      it("checks an adopted bucket too: the stack reads its lifecycle (#12), so a bucket without retention is reported", async () => {
        const adopted = await runProgramUnderMocks({ stack: "prod", config: { "fuxi:dataBucket": { existingName: "their-forecast-bucket" } }, existingBuckets: { "their-forecast-bucket": wellKeptBucket("their-forecast-bucket") } });
        const { violations } = await runStackPolicy(s3OutputRetentionOnProduction, fromRecorded(adopted.resources));
        assert.equal(violations.length, 1);
        assert.match(violations[0]!.message, /^aws:s3\/bucket:Bucket "data-adopted": production stack "prod" keeps every forecast under output\/ in S3 Standard forever/);
      });
    });
  });
});
