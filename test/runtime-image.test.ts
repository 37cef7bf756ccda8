// The runtime image, built from runtime/Dockerfile (local CPU variant) and run with the real Docker
// engine as SageMaker runs it: `docker run <image> serve`, port 8080, models read-only at
// /opt/ml/model, the image's non-root user, the model environment of the dev stack, against s3rver on
// the host's loopback (host network). Skipped with one line where there is no Docker engine.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { chmod, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { startLocalS3, type LocalS3 } from "../tools/local-s3";
import { RUNTIME_ENV, RUNTIME_LOG_EVENTS, runtimeLogEvent } from "../runtime/src/contract";
import { writeStandinModels } from "../tools/standin-model";
import { loadLocalStack, localModelEnvironment } from "../local/stack-settings";
import { removeContainer, startRuntimeContainer, type RunningRuntimeContainer } from "../local/runtime-container";
import { buildLocalImage, DockerUnavailableError, localCaCertificates, LOCAL_BASE_IMAGE, type BuiltImage } from "../tools/runtime-image";
import type { Manifest } from "../runtime/src/contract";
import { docker, DOCKER_REQUIRED, localImage, skipWithoutDocker } from "./support/docker";
import { forecastRequest, freePort, http, python, REPO_ROOT, startRuntimeChild, tempDir, writeInputWithXarray } from "./support/runtime-harness";

const run = promisify(execFile);
const BUCKET = "fuxi-data";
const INIT = new Date("2023-10-12T06:00:00Z");
/** Two stage switches; long enough on this grid to stop the container part-way. */
const CASCADE = [20, 20, 4];
const GRID = { lat: 61, lon: 120 };
const LEADS = Array.from({ length: CASCADE.reduce((a, b) => a + b, 0) }, (_, i) => (i + 1) * 6);
const stepName = (lead: number) => `${String(lead).padStart(3, "0")}.nc`;

interface Logged {
  records: Array<Record<string, unknown>>;
  waitFor(predicate: (record: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

function logCollector(): Logged & { onLogRecord(record: Record<string, unknown>): void } {
  const records: Array<Record<string, unknown>> = [];
  const waiters: Array<{ predicate: (r: Record<string, unknown>) => boolean; resolve(r: Record<string, unknown>): void }> = [];
  return {
    records,
    onLogRecord(record) {
      records.push(record);
      for (const waiter of [...waiters]) {
        if (!waiter.predicate(record)) continue;
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(record);
      }
    },
    waitFor(predicate, timeoutMs = 120_000) {
      const seen = records.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching container log line within ${timeoutMs} ms; last: ${JSON.stringify(records.slice(-3))}`)), timeoutMs);
        waiters.push({ predicate, resolve: (r) => (clearTimeout(timer), resolve(r)) });
      });
    },
  };
}

describe("runtime image (real Docker): run as SageMaker runs it", function () {
  this.timeout(1_800_000);
  let image: BuiltImage;
  let work: string;
  let models: string;
  let s3: LocalS3;
  let environment: Record<string, string>;
  const containers: string[] = [];

  async function getBytes(key: string): Promise<Buffer> {
    const response = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return Buffer.from(await response.Body!.transformToByteArray());
  }
  async function listNames(runId: string): Promise<string[]> {
    const listing = await s3.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `output/${runId}/` }));
    return (listing.Contents ?? []).map((o) => o.Key!.slice(`output/${runId}/`.length)).sort();
  }
  async function start(label: string, logged = logCollector()): Promise<RunningRuntimeContainer & Logged> {
    const container = await startRuntimeContainer(
      { image: image.id, hostEnv: s3.env, logFile: join(work, `${label}.log`), onLogRecord: logged.onLogRecord, port: "sagemaker", keep: true, namePrefix: "fuxi-issue13-test" },
      environment,
      label,
    );
    containers.push(container.name);
    return Object.assign(container, { records: logged.records, waitFor: logged.waitFor });
  }

  before(async function () {
    skipWithoutDocker(this);
    image = await localImage();
    work = await tempDir("runtime-image");
    models = join(work, "models");
    await writeStandinModels(models, GRID);
    // The container runs as uid 10001: the mounted folder must be readable by others, as an extracted
    // ModelDataUrl is.
    await chmod(work, 0o755);
    await chmod(models, 0o755);
    for (const file of await readdir(models)) await chmod(join(models, file), 0o644);
    s3 = await startLocalS3({ buckets: [BUCKET] });
    const input = await writeInputWithXarray(join(work, "input.nc"), { ...GRID, initTime: INIT });
    for (const runId of ["reference", "container", "stopped"]) {
      await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `input/${runId}/fuxi_input.nc`, Body: input }));
    }
    // The model's Environment exactly as components/forecastModel.ts builds it from Pulumi.dev.yaml,
    // with the providers this CPU image has; SageMaker adds SAGEMAKER_BATCH for a transform job.
    // The stack's lanes name its own bucket; this test's requests use the harness's bucket (BUCKET).
    environment = { ...localModelEnvironment(loadLocalStack("dev"), models, ["cpu"]), [RUNTIME_ENV.dataBucket]: BUCKET, SAGEMAKER_BATCH: "true" };

    // The in-process runtime (tsx, as the local pipeline and the other tests run it) on the same
    // stand-in model and input: the reference the image must match bit for bit.
    const reference = await startRuntimeChild({ ...s3.env, ...environment });
    try {
      await reference.waitUntilReady();
      const answer = await http("POST", `${reference.url}/invocations`, JSON.stringify(forecastRequest("reference", CASCADE)));
      assert.equal(answer.status, 200, answer.body);
    } finally {
      await reference.stop();
    }
  });

  after(async () => {
    for (const name of containers) removeContainer(name);
    await s3?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("is the CPU variant: non-root user, exec ENTRYPOINT taking `serve`, and only node, production node_modules and dist", () => {
    const [config] = JSON.parse(docker(["image", "inspect", image.id])) as Array<{ Config: { User: string; Entrypoint: string[]; Cmd: string[]; ExposedPorts: Record<string, unknown>; Env: string[] } }>;
    assert.equal(config.Config.User, "10001");
    assert.deepEqual(config.Config.Entrypoint, ["node", "dist/main.js"]);
    assert.deepEqual(config.Config.Cmd, ["serve"]);
    assert.ok("8080/tcp" in config.Config.ExposedPorts);
    assert.ok(config.Config.Env.includes("FUXI_MODEL_DIR=/opt/ml/model"));
    const probe = `
      const fs = require("fs"), path = require("path");
      const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]);
      const files = walk("/opt/fuxi");
      console.log(JSON.stringify({
        uid: process.getuid(),
        node: process.version,
        top: fs.readdirSync("/opt/fuxi").sort(),
        modules: fs.readdirSync("/opt/fuxi/node_modules").flatMap((m) => m.startsWith("@") ? fs.readdirSync("/opt/fuxi/node_modules/" + m).map((s) => m + "/" + s) : [m]).sort(),
        tsSources: files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts") && !f.includes("/node_modules/")),
        ortPlatforms: fs.readdirSync("/opt/fuxi/node_modules/onnxruntime-node/bin/napi-v6").flatMap((os) => fs.readdirSync("/opt/fuxi/node_modules/onnxruntime-node/bin/napi-v6/" + os).map((a) => os + "/" + a)),
        present: ["/opt/node", "/usr/local/sbin/fetch-node.sh", "/root/.npm", "/home/fuxi/.npm", "/usr/local/bin/npm", "/opt/fuxi/src", "/tmp/node-fetch"].filter((p) => fs.existsSync(p)),
        certs: fs.existsSync("/etc/ssl/certs") ? fs.readdirSync("/etc/ssl/certs").map((f) => { try { return fs.readFileSync("/etc/ssl/certs/" + f, "utf8"); } catch { return ""; } }).join("\\n") : "",
      }));`;
    const seen = JSON.parse(docker(["run", "--rm", "--network", "none", "--entrypoint", "node", image.id, "-e", probe]));
    assert.equal(seen.uid, 10001);
    assert.deepEqual(seen.top, ["dist", "node_modules", "package.json"]);
    assert.deepEqual(seen.modules.filter((m: string) => m === "typescript" || m.startsWith("@types/") || m === "tsx" || m === "mocha"), [], "dev dependencies in the image");
    assert.ok(seen.modules.includes("onnxruntime-node") && seen.modules.includes("@aws-sdk/client-s3"));
    assert.deepEqual(seen.tsSources, []);
    assert.deepEqual(seen.ortPlatforms, ["linux/x64"]);
    assert.deepEqual(seen.present, [], "build tools, npm and its caches stay in the build stages");
    // The build's extra CA (the local variant's BUILD_CA_CERTS) must not reach the image.
    const buildCa = localCaCertificates().match(/-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]{60})/g) ?? [];
    for (const cert of buildCa) assert.ok(!seen.certs.includes(cert.replace(/-----BEGIN CERTIFICATE-----\s*/, "").slice(0, 60)), "a build CA certificate is in the image");
    assert.doesNotMatch(docker(["history", "--no-trunc", image.id]), /BUILD_CA_CERTS|BEGIN CERTIFICATE/);
    assert.equal(image.baseImage, process.env.FUXI_LOCAL_BASE_IMAGE || LOCAL_BASE_IMAGE);
  });

  it("keeps the layers it adds within the budget of runtime/README.md (CPU variant)", () => {
    const history = (reference: string) => docker(["history", "--no-trunc", "--human=false", "--format", "{{.Size}}\t{{.CreatedBy}}", reference]).trim().split("\n").reverse().map((line) => ({ bytes: Number(line.split("\t")[0]), by: line.split("\t")[1] }));
    const added = history(image.id).slice(history(image.baseImage).length);
    const copies = added.filter((layer) => /^\/bin\/sh -c #\(nop\) COPY /.test(layer.by) || /^COPY /.test(layer.by));
    assert.equal(copies.length, 4, `COPY layers: ${copies.map((c) => c.by).join(" | ")}`);
    const [node, , nodeModules, dist] = copies.map((c) => c.bytes / 1e6);
    const total = added.reduce((sum, layer) => sum + layer.bytes, 0) / 1e6;
    console.log(`      layers added (uncompressed MB): node ${node.toFixed(1)}, node_modules ${nodeModules.toFixed(1)}, dist ${dist.toFixed(2)}, all ${total.toFixed(1)}`);
    assert.ok(node <= 130, `Node layer ${node} MB > 130 MB`);
    assert.ok(nodeModules <= 100, `node_modules layer ${nodeModules} MB > 100 MB`);
    assert.ok(dist <= 5, `dist layer ${dist} MB > 5 MB`);
    assert.ok(total <= 250, `the project adds ${total} MB > 250 MB`);
  });

  it("serves a full request on 8080 as uid 10001 with /ping healthy throughout; files bit-identical to the in-process runtime; scratch empty", async () => {
    const container = await start("container");
    const pings: number[] = [];
    try {
      await container.waitFor((r) => runtimeLogEvent(r, RUNTIME_LOG_EVENTS.ready) !== undefined);
      assert.equal((await http("GET", "http://127.0.0.1:8080/ping")).status, 200);
      const status = docker(["exec", container.name, "cat", "/proc/1/status"]);
      assert.match(status, /^Uid:\s+10001\s/m, "PID 1 (node) runs as the image's user");
      assert.deepEqual(JSON.parse((await http("GET", "http://127.0.0.1:8080/execution-parameters")).body), { MaxConcurrentTransforms: 1, BatchStrategy: "SINGLE_RECORD", MaxPayloadInMB: 1 });

      const invocation = http("POST", "http://127.0.0.1:8080/invocations", JSON.stringify(forecastRequest("container", CASCADE)));
      let done = false;
      void invocation.finally(() => (done = true)).catch(() => undefined);
      while (!done) {
        const ping = await http("GET", "http://127.0.0.1:8080/ping");
        pings.push(ping.status === 200 ? ping.ms : -ping.status);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const answer = await invocation;
      assert.equal(answer.status, 200, answer.body);
      const manifest = JSON.parse(answer.body) as Manifest;
      assert.equal(manifest.steps, LEADS.length);
      assert.deepEqual(manifest.providers, ["cpu"]);
      assert.ok(pings.length >= 3, `pinged ${pings.length} times during the run`);
      assert.ok(pings.every((ms) => ms >= 0 && ms < 2000), `every /ping during the run answered 200 within SageMaker's 2 s: ${pings.map(Math.round).join(",")}`);

      assert.deepEqual(await listNames("container"), await listNames("reference"));
      for (const lead of LEADS) {
        const [mine, theirs] = await Promise.all([getBytes(`output/container/${stepName(lead)}`), getBytes(`output/reference/${stepName(lead)}`)]);
        assert.ok(mine.equals(theirs), `${stepName(lead)} from the image differs from the in-process runtime's`);
      }
      const referenceManifest = JSON.parse((await getBytes("output/reference/_SUCCESS")).toString()) as Manifest;
      assert.deepEqual(manifest.files.map((f) => [f.file, f.bytes]), referenceManifest.files.map((f) => [f.file, f.bytes]));

      // Real readers on files the image wrote, at both stage switches and the end.
      for (const lead of [120, 126, 240, 246, LEADS[LEADS.length - 1]]) await writeFile(join(work, stepName(lead)), await getBytes(`output/container/${stepName(lead)}`));
      const { stdout: header } = await run("ncdump", ["-h", join(work, "246.nc")]);
      assert.match(header, /float \w+\(time, step, level, lat, lon\)/);
      assert.match(header, new RegExp(`lat = ${GRID.lat} ;`));
      const summary = JSON.parse(await python(`
import json, sys, numpy as np, xarray as xr
out = {}
for f in sys.argv[1:]:
    da = xr.open_dataarray(f)
    step = da.step.values[0]
    # int hours, or a timedelta where the file still carries units = "hours" (xarray then decodes it)
    hours = int(step / np.timedelta64(1, "h")) if np.issubdtype(da.step.dtype, np.timedelta64) else int(step)
    out[f.split("/")[-1]] = {"dims": list(da.dims), "shape": list(da.shape), "step": hours, "finite": bool(np.isfinite(da.values).all())}
print(json.dumps(out))`, [120, 126, 240, 246, LEADS[LEADS.length - 1]].map((lead) => join(work, stepName(lead)))));
      for (const lead of [120, 126, 240, 246]) {
        assert.deepEqual(summary[stepName(lead)], { dims: ["time", "step", "level", "lat", "lon"], shape: [1, 1, 70, GRID.lat, GRID.lon], step: lead, finite: true });
      }

      // The same request again: idempotent, nothing recomputed.
      const again = await http("POST", "http://127.0.0.1:8080/invocations", JSON.stringify(forecastRequest("container", CASCADE)));
      assert.equal(again.status, 200);
      assert.equal((JSON.parse(again.body) as Manifest).fingerprint, manifest.fingerprint);
      assert.equal(docker(["exec", container.name, "find", "/tmp/fuxi-scratch", "-mindepth", "1"]).trim(), "", "the container's scratch directory is empty after the run");
    } finally {
      await container.stop();
    }
    assert.equal(await container.exitCode, 0);
  });

  it("`docker stop` mid-run: SIGTERM ends the run at a step boundary, exit 0, scratch empty; a retry resumes to identical files", async () => {
    const first = await start("stopped-1");
    let stoppedAfter: string[];
    try {
      await first.waitFor((r) => runtimeLogEvent(r, RUNTIME_LOG_EVENTS.ready) !== undefined);
      const invocation = http("POST", "http://127.0.0.1:8080/invocations", JSON.stringify(forecastRequest("stopped", CASCADE))).catch((error: Error) => ({ status: 0, body: error.message, ms: 0 }));
      await first.waitFor((r) => (runtimeLogEvent(r, RUNTIME_LOG_EVENTS.stepDone)?.step ?? -1) >= 4);
      await first.stop(); // docker stop: SIGTERM to PID 1, SIGKILL only after the 30 s grace
      await invocation;
    } finally {
      await first.stop();
    }
    assert.equal(await first.exitCode, 0, `exit code after docker stop: ${await first.exited}`);
    assert.ok(first.records.some((r) => r.msg === "shutting down" && r.signal === "SIGTERM"));
    const [{ State }] = JSON.parse(docker(["inspect", first.name])) as Array<{ State: { ExitCode: number; OOMKilled: boolean } }>;
    assert.deepEqual([State.ExitCode, State.OOMKilled], [0, false]);
    // The stopped container's scratch folder (read from the container's own file system).
    assert.deepEqual(await listTar(first.name, "/tmp/fuxi-scratch"), [], "scratch folder empty after SIGTERM");

    stoppedAfter = await listNames("stopped");
    assert.ok(!stoppedAfter.includes("_SUCCESS"), "a stopped run is never marked complete");
    const steps = stoppedAfter.filter((n) => /^\d{3}\.nc$/.test(n));
    assert.ok(steps.length >= 4 && steps.length < LEADS.length, `stopped part-way: ${steps.join(",")}`);
    assert.deepEqual(steps, LEADS.slice(0, steps.length).map(stepName), "finished steps are consecutive from 006.nc (a step boundary)");
    for (const name of steps) assert.ok((await getBytes(`output/stopped/${name}`)).equals(await getBytes(`output/reference/${name}`)), `${name} complete and identical`);

    const retry = await start("stopped-2");
    try {
      await retry.waitFor((r) => runtimeLogEvent(r, RUNTIME_LOG_EVENTS.ready) !== undefined);
      const answer = await http("POST", "http://127.0.0.1:8080/invocations", JSON.stringify(forecastRequest("stopped", CASCADE)));
      assert.equal(answer.status, 200, answer.body);
      const resumed = retry.records.find((r) => r.msg === "resuming an interrupted run");
      assert.ok(resumed && typeof resumed.resumeFrom === "number" && resumed.resumeFrom >= steps.length - 1, `resumed: ${JSON.stringify(resumed)}`);
    } finally {
      await retry.stop();
    }
    assert.equal(await retry.exitCode, 0);
    assert.deepEqual(await listNames("stopped"), await listNames("reference"));
    for (const lead of LEADS) assert.ok((await getBytes(`output/stopped/${stepName(lead)}`)).equals(await getBytes(`output/reference/${stepName(lead)}`)), `${stepName(lead)} after resume`);
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "output/stopped/_SUCCESS" }));
    assert.ok(head.ContentLength! > 0);
  });
});

/** Entries under `path` in a (stopped) container, read with `docker cp` (a tar stream). */
async function listTar(name: string, path: string): Promise<string[]> {
  const { stdout } = await run("sh", ["-c", `docker cp '${name}:${path}' - | tar -t`], { maxBuffer: 16 << 20 });
  return stdout.split("\n").filter((line) => line && line.replace(/\/$/, "") !== path.split("/").pop());
}

describe("runtime image (real Docker): pushed to a registry", function () {
  this.timeout(1_800_000);
  let image: BuiltImage;
  let work: string;
  let registry: ReturnType<typeof spawn> | undefined;
  let port: number;
  const references: string[] = [];

  before(async function () {
    skipWithoutDocker(this, [{ command: "docker-registry", install: "`sudo apt-get install docker-registry` (Debian's registry, served on loopback by the test)" }]);
    image = await localImage();
    work = await tempDir("runtime-registry");
    port = await freePort();
    await writeFile(join(work, "config.yml"), `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(work, "data")}\nhttp:\n  addr: 127.0.0.1:${port}\n`);
    registry = spawn("docker-registry", ["serve", join(work, "config.yml")], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    registry.stderr!.on("data", (chunk) => (stderr += chunk));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const answer = await fetch(`http://127.0.0.1:${port}/v2/`).catch(() => undefined);
      if (answer?.status === 200) break;
      if (Date.now() > deadline || registry.exitCode !== null) throw new Error(`docker-registry did not start on 127.0.0.1:${port}: ${stderr.slice(-1000)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });

  after(async () => {
    for (const reference of references) await run("docker", ["rmi", reference]).catch(() => undefined);
    if (registry && registry.exitCode === null) {
      registry.kill("SIGTERM");
      await new Promise((resolve) => registry!.once("exit", resolve));
    }
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Pushes `id` and returns the digest after checking the stored manifest is Docker v2 schema 2. */
  async function pushAndCheck(id: string, label: string): Promise<{ repository: string; digest: string }> {
    const repository = `127.0.0.1:${port}/fuxi-runtime`;
    const tag = `${repository}:issue13-${label}-${process.pid}`;
    docker(["tag", id, tag]);
    references.push(tag);
    const pushed = docker(["push", tag]);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed)?.[1];
    assert.ok(digest, `push printed a digest: ${pushed}`);

    // Ask for every format a registry may hold; the registry answers with the stored one.
    const response = await fetch(`http://127.0.0.1:${port}/v2/fuxi-runtime/manifests/${digest}`, {
      headers: { accept: ["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json"].join(", ") },
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/vnd.docker.distribution.manifest.v2+json");
    assert.equal(response.headers.get("docker-content-digest"), digest);
    const manifest = (await response.json()) as { schemaVersion: number; mediaType: string; config: { mediaType: string }; layers: Array<{ mediaType: string; size: number }> };
    assert.equal(manifest.schemaVersion, 2);
    assert.equal(manifest.mediaType, "application/vnd.docker.distribution.manifest.v2+json");
    assert.equal(manifest.config.mediaType, "application/vnd.docker.container.image.v1+json");
    assert.ok(manifest.layers.every((layer) => layer.mediaType === "application/vnd.docker.image.rootfs.diff.tar.gzip"));
    const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
    const store = docker(["info", "--format", "{{.Driver}} {{json .DriverStatus}}"]).trim();
    console.log(`      ${label}: pushed layers (compressed MB, base first) ${manifest.layers.map((l) => mb(l.size)).join(", ")}; total ${mb(manifest.layers.reduce((sum, l) => sum + l.size, 0))}; image store: ${store.includes("io.containerd.snapshotter") ? "containerd" : "classic"} (${store.split(" ")[0]})`);
    docker(["rmi", tag]);
    references.splice(references.indexOf(tag), 1);
    return { repository, digest: digest! };
  }

  it("pushes a Docker v2 schema 2 manifest (not OCI), and the image pulled back by digest runs", async () => {
    const { repository, digest } = await pushAndCheck(image.id, "classic-build");
    // Pull back by digest (as SageMaker does with the model's image@sha256) and run that.
    const byDigest = `${repository}@${digest}`;
    docker(["pull", byDigest]);
    references.push(byDigest);
    const models = join(work, "models");
    await writeStandinModels(models, { lat: 5, lon: 8 });
    await chmod(work, 0o755);
    await chmod(models, 0o755);
    for (const file of await readdir(models)) await chmod(join(models, file), 0o644);
    const s3 = await startLocalS3({ buckets: [BUCKET] });
    const logged = logCollector();
    const container = await startRuntimeContainer(
      { image: byDigest, hostEnv: s3.env, logFile: join(work, "pulled.log"), onLogRecord: logged.onLogRecord, port: "free", namePrefix: "fuxi-issue13-test" },
      { ...localModelEnvironment(loadLocalStack("dev"), models, ["cpu"]) },
      "pulled",
    );
    try {
      await logged.waitFor((r) => runtimeLogEvent(r, RUNTIME_LOG_EVENTS.ready) !== undefined);
      assert.equal((await http("GET", `${container.url}/ping`)).status, 200);
    } finally {
      await container.stop();
      await s3.stop();
    }
    assert.equal(await container.exitCode, 0);
  });

  it("built with BuildKit (as @pulumi/docker's docker.Image builds) and pushed from this engine's image store: Docker v2 too", async function () {
    let built: BuiltImage;
    try {
      built = await buildLocalImage({ buildkit: true, tag: "fuxi-runtime:local-buildkit", log: join(work, "buildkit.log"), progress: () => undefined });
    } catch (error) {
      // No docker CLI on PATH that builds with BuildKit (Docker's CLI >= 23 without the buildx plugin only).
      if (error instanceof DockerUnavailableError && !DOCKER_REQUIRED) {
        console.log(`      SKIPPED (BuildKit build): ${error.message}`);
        this.skip();
      }
      throw error;
    }
    references.push(built.tag);
    await pushAndCheck(built.id, "buildkit-build");
  });
});

describe("npm start -- --container", function () {
  this.timeout(1_800_000);
  let work: string;

  before(async function () {
    skipWithoutDocker(this);
    await localImage();
    work = await tempDir("local-container");
    await chmod(work, 0o755);
  });
  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("runs the local pipeline with the runtime in the image, with the same files as with the runtime process", async () => {
    const cli = (workdir: string, extra: string[]) =>
      run(process.execPath, ["--import", "tsx", join(REPO_ROOT, "local/run.ts"), "--steps", "3", "--grid", "19x36", "--no-quicklook", "--workdir", workdir, ...extra], { cwd: REPO_ROOT, maxBuffer: 16 << 20 });
    const inContainer = await cli(join(work, "container"), ["--container"]);
    assert.match(inContainer.stdout, /runtime\s+container fuxi-runtime:local \(sha256:[0-9a-f]{12}/);
    assert.match(inContainer.stdout, /Run 2023101206 done/);
    const inProcess = await cli(join(work, "process"), []);
    assert.match(inProcess.stdout, /Run 2023101206 done/);
    const folder = (which: string) => join(work, which, "output", "2023101206");
    const names = (await readdir(folder("container"))).filter((n) => n.endsWith(".nc")).sort();
    assert.deepEqual(names, ["006.nc", "012.nc", "018.nc"]);
    assert.deepEqual((await readdir(folder("process"))).filter((n) => n.endsWith(".nc")).sort(), names);
    for (const name of names) assert.ok((await readFile(join(folder("container"), name))).equals(await readFile(join(folder("process"), name))), `${name} differs`);
    const runtimeLog = await readFile(join(work, "container", "logs", "runtime.log"), "utf8");
    assert.match(runtimeLog, /"event":"runtime.ready"/);
  });
});
