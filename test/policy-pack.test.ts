import { strict as assert } from "node:assert";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { policies } from "../policy/rules";

/**
 * Starts the pack the way the Pulumi CLI's Node.js language host does
 * (@pulumi/pulumi's run-policy-pack, from the pack's own install, TypeScript
 * compiled and type-checked by the pack's ts-node) and talks to it over the
 * analyzer gRPC protocol the engine uses.
 */
const PACK_DIR = join(__dirname, "..", "policy");
const fromPack = (m: string) => require(require.resolve(m, { paths: [PACK_DIR] }));

const UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"; // the engine's wire sentinel for a value not known yet

describe("policy pack served over the analyzer protocol", function () {
  this.timeout(180_000);
  let child: ChildProcess;
  let client: any;
  let pb: any;
  let Struct: any;
  let stderr = "";

  before(async () => {
    const runner = join(PACK_DIR, "node_modules", "@pulumi", "pulumi", "cmd", "run-policy-pack");
    assert.ok(existsSync(runner), "policy/node_modules is missing: `npm ci` at the root installs it (postinstall), or run `npm ci --prefix policy`");
    child = spawn(process.execPath, [runner, "127.0.0.1:0", "."], { cwd: PACK_DIR, stdio: ["ignore", "pipe", "pipe"] });
    child.stderr!.on("data", (d) => (stderr += d));
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d) => {
        out += d;
        const m = /^(\d+)\s*$/m.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.on("exit", (code) => reject(new Error(`policy pack exited with ${code} before serving:\n${stderr}`)));
    });
    const grpc = fromPack("@grpc/grpc-js");
    const services = fromPack("@pulumi/pulumi/proto/analyzer_grpc_pb.js");
    pb = fromPack("@pulumi/pulumi/proto/analyzer_pb.js");
    Struct = fromPack("google-protobuf/google/protobuf/struct_pb.js").Struct;
    client = new services.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });

  after(() => {
    client?.close();
    child?.kill();
  });

  const call = <T>(method: string, req: unknown): Promise<T> =>
    new Promise((resolve, reject) => client[method](req, (err: Error | null, res: T) => (err ? reject(err) : resolve(res))));

  function options(): any {
    const o = new pb.AnalyzerResourceOptions();
    o.setProtect(false);
    return o;
  }

  async function analyze(type: string, name: string, props: Record<string, unknown>): Promise<{ policy: string; message: string; level: number }[]> {
    const req = new pb.AnalyzeRequest();
    req.setType(type);
    req.setName(name);
    req.setUrn(`urn:pulumi:dev::fuxi::${type}::${name}`);
    req.setProperties(Struct.fromJavaScript(props));
    req.setOptions(options());
    const res: any = await call("analyze", req);
    return res.getDiagnosticsList().map((d: any) => ({ policy: d.getPolicyname(), message: d.getMessage(), level: d.getEnforcementlevel() }));
  }

  it("describes itself: every policy of policy/rules.ts, with config schemas", async () => {
    const empty = new (fromPack("google-protobuf/google/protobuf/empty_pb.js").Empty)();
    const info: any = await call("getAnalyzerInfo", empty);
    assert.equal(info.getName(), "fuxi-aws");
    const served = info.getPoliciesList().map((p: any) => p.getName()).sort();
    assert.deepEqual(served, policies.map((p) => p.name).sort());
    const withSchema = info.getPoliciesList().filter((p: any) => p.getConfigschema()?.getProperties()).map((p: any) => p.getName()).sort();
    assert.deepEqual(withSchema, policies.filter((p) => p.configSchema).map((p) => p.name).sort());
  });

  it("reports mandatory violations for a bad resource", async () => {
    const found = await analyze("aws:lambda/function:Function", "fn", { runtime: "nodejs18.x", tags: { "fuxi:project": "fuxi-sagemaker", "fuxi:stack": "dev" } });
    const byPolicy = new Map(found.map((d) => [d.policy, d]));
    assert.match(byPolicy.get("lambda-supported-runtime")?.message ?? "", /nodejs18\.x/);
    assert.ok(byPolicy.has("lambda-reserved-concurrency"));
    const MANDATORY = pb.EnforcementLevel.MANDATORY;
    assert.ok(found.every((d) => d.level === MANDATORY), JSON.stringify(found));
  });

  it("finds taggable types from the pack's own @pulumi/aws install", async () => {
    const found = await analyze("aws:sqs/queue:Queue", "q", {});
    assert.match(found.find((d) => d.policy === "required-tags")?.message ?? "", /aws:sqs\/queue:Queue "q" is missing required tags "fuxi:project", "fuxi:stack"/);
    const tls = { Statement: [{ Effect: "Deny", Principal: "*", Action: "s3:*", Resource: ["arn:aws-cn:s3:::b", "arn:aws-cn:s3:::b/*"], Condition: { Bool: { "aws:SecureTransport": "false" } } }] };
    assert.deepEqual(await analyze("aws:s3/bucketPolicy:BucketPolicy", "p", { bucket: "b", policy: JSON.stringify(tls) }), []);
    // A bucket policy is checked as it is created (a resource validation), not only at the end of an update.
    const bad = await analyze("aws:s3/bucketPolicy:BucketPolicy", "p", { bucket: "b", policy: JSON.stringify({ Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: "arn:aws-cn:s3:::b/*" }] }) });
    assert.deepEqual(bad.map((d) => d.policy).sort(), ["resource-policy-not-public", "s3-bucket-tls-only"]);
  });

  it("reports nothing for a good resource", async () => {
    const found = await analyze("aws:ecr/repository:Repository", "repo", {
      imageTagMutability: "IMMUTABLE",
      imageScanningConfiguration: { scanOnPush: true },
      tags: { "fuxi:project": "fuxi-sagemaker", "fuxi:stack": "dev" },
    });
    assert.deepEqual(found, []);
  });

  it("turns a value unknown during preview into an advisory note, not a failure", async () => {
    const found = await analyze("aws:sagemaker/model:Model", "model", { primaryContainer: { image: UNKNOWN_STRING }, tags: { "fuxi:project": "fuxi-sagemaker", "fuxi:stack": "dev" } });
    const note = found.find((d) => d.policy === "sagemaker-image-by-digest");
    assert.ok(note, JSON.stringify(found));
    assert.match(note.message, /can't run policy 'sagemaker-image-by-digest'.*during preview/);
    assert.equal(note.level, pb.EnforcementLevel.ADVISORY);
  });

  it("runs stack policies: a bare bucket misses its companions", async () => {
    const r = new pb.AnalyzerResource();
    r.setType("aws:s3/bucket:Bucket");
    r.setName("data");
    r.setUrn("urn:pulumi:dev::fuxi::aws:s3/bucket:Bucket::data");
    r.setProperties(Struct.fromJavaScript({ bucket: "fuxi-dev-data", tags: { "fuxi:project": "fuxi-sagemaker", "fuxi:stack": "dev" } }));
    r.setOptions(options());
    const req = new pb.AnalyzeStackRequest();
    req.setResourcesList([r]);
    const res: any = await call("analyzeStack", req);
    const names = new Set(res.getDiagnosticsList().map((d: any) => d.getPolicyname()));
    assert.ok(names.has("s3-bucket-companions"), [...names].join(", "));
    const messages = res.getDiagnosticsList().filter((d: any) => d.getPolicyname() === "s3-bucket-companions").map((d: any) => d.getMessage()).join("\n");
    for (const kind of ["BucketServerSideEncryptionConfiguration", "BucketPublicAccessBlock", "BucketPolicy", "BucketVersioning", "BucketLifecycleConfiguration"]) {
      assert.match(messages, new RegExp(`has no ${kind}`));
    }
  });

  it("pins the same @pulumi versions as the program", () => {
    const root = JSON.parse(readFileSync(join(__dirname, "..", "package.json"), "utf8"));
    const pack = JSON.parse(readFileSync(join(PACK_DIR, "package.json"), "utf8"));
    const rootAll = { ...root.dependencies, ...root.devDependencies };
    for (const dep of ["@pulumi/aws", "@pulumi/policy", "@pulumi/pulumi"]) assert.equal(pack.dependencies[dep], rootAll[dep], dep);
    assert.match(readFileSync(join(PACK_DIR, "PulumiPolicy.yaml"), "utf8"), /^runtime: nodejs$/m);
  });
});
