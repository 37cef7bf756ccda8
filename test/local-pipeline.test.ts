import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { PNG } from "pngjs";
import { readForecastStep } from "../runtime/src/netcdf";
import { stageSchedule, STAGE_NAMES } from "../runtime/src/contract";
import { timeEmbedding } from "../runtime/src/time-embedding";
import { syntheticFuxiInput, writeFuxiInputNetcdf4 } from "../tools/fuxi-input-file";
import { standinReferenceStep, writeStandinModels } from "../tools/standin-model";
import { runLocalPipeline, runIdFor, type LocalRunResult } from "../local/pipeline";
import { startLocalStackOnLoopback } from "../local/local-stack";
import { loadLocalStack } from "../local/stack-settings";
import { IMAGE_HEIGHT, IMAGE_WIDTH } from "../local/quicklook-render";
import { parseCli, summary } from "../local/run";

const GRID = { lat: 19, lon: 36 };
const INIT = new Date("2023-10-12T06:00:00Z");
const CASCADE = [2, 1, 1];

/** The stand-in cascade computed independently of the runtime: window after each step, bit for bit. */
function expectedForecasts(): Map<number, Float32Array> {
  const frame = 70 * GRID.lat * GRID.lon;
  let window = syntheticFuxiInput({ initTime: INIT, ...GRID });
  const byLead = new Map<number, Float32Array>();
  stageSchedule(CASCADE).forEach((stage, step) => {
    window = standinReferenceStep(STAGE_NAMES[stage], window, timeEmbedding(INIT, step), GRID);
    byLead.set((step + 1) * 6, window.slice(frame));
  });
  return byLead;
}

describe("local pipeline end to end (npm start on a tiny grid, real trigger and runtime)", function () {
  this.timeout(180_000);
  let workDir: string;
  let result: LocalRunResult;
  const events: string[] = [];

  before(async () => {
    workDir = await mkdtemp(join(tmpdir(), "fuxi-local-run-"));
    result = await runLocalPipeline({
      stack: loadLocalStack("dev", { cascadeSteps: CASCADE }),
      workDir,
      initTime: INIT,
      grid: GRID,
      providers: ["cpu"],
      quicklookLeads: [6, 24],
      onEvent: (e) => events.push(e.kind === "step" ? `step ${e.done}/${e.total} +${e.lead}h` : e.kind === "job" ? `job ${e.status}` : e.kind),
    });
  });
  after(async () => { await rm(workDir, { recursive: true, force: true }); });

  it("starts exactly one transform job through the real trigger, and it completes", () => {
    assert.deepEqual(result.trigger.map((o) => o.decision), ["started"]);
    assert.equal(result.jobs.length, 1);
    const job = result.jobs[0];
    assert.equal(job.status, "Completed", job.failureReason);
    assert.match(job.request.TransformJobName, /^fuxi-dev-2023101206-[0-9a-f]{8}$/);
    assert.equal(job.request.ModelName, "fuxi-dev-model-local");
    assert.equal(job.request.TransformInput.DataSource.S3DataSource.S3Uri, `s3://fuxi-dev-data-local/requests/${job.request.TransformJobName}.json`);
    assert.equal(job.invocationAttempts, 1);
    // Two steps upload at once, so a later lead may finish first: the counter is ordered, the leads are a set.
    const steps = events.filter((e) => e.startsWith("step"));
    assert.deepEqual(steps.map((e) => e.split(" ")[1]), ["1/4", "2/4", "3/4", "4/4"]);
    assert.deepEqual(steps.map((e) => e.split(" ")[2]).sort((a, b) => parseInt(a.slice(1)) - parseInt(b.slice(1))), ["+6h", "+12h", "+18h", "+24h"]);
    assert.ok(events.indexOf("runtime-ready") < events.indexOf(steps[0]));
  });

  it("writes every step, the manifest and the Batch Transform .out where the contract says", () => {
    assert.deepEqual(result.files.map((f) => f.name), ["006.nc", "012.nc", "018.nc", "024.nc", "_SUCCESS", `_transform/${result.jobs[0].request.TransformJobName}.json.out`]);
    const m = result.manifest;
    assert.equal(m.runId, runIdFor(INIT));
    assert.equal(m.jobName, result.jobs[0].request.TransformJobName);
    assert.equal(m.initTime, INIT.toISOString());
    assert.deepEqual(m.cascadeSteps, CASCADE);
    assert.equal(m.steps, 4);
    assert.deepEqual(m.grid, GRID);
    assert.equal(m.input, "s3://fuxi-dev-data-local/input/2023101206/synthetic_fuxi_input.nc");
    assert.deepEqual(m.files.map((f) => [f.file, f.lead, f.stage]), [["006.nc", 6, "short"], ["012.nc", 12, "short"], ["018.nc", 18, "medium"], ["024.nc", 24, "long"]]);
    for (const f of m.files) assert.equal(f.bytes, result.files.find((g) => g.name === f.file)!.bytes);
    assert.deepEqual(result.transformOutput.body, m, "the .out object is the runtime's answer: the manifest");
    assert.equal(result.transformOutput.uri, `s3://fuxi-dev-data-local/output/2023101206/_transform/${m.jobName}.json.out`);
  });

  it("produces the forecast the stand-in cascade defines, bit for bit, in files real readers open", async () => {
    const expected = expectedForecasts();
    for (const lead of [6, 12, 18, 24]) {
      const file = join(result.outputFolder, `${String(lead).padStart(3, "0")}.nc`);
      const step = await readForecastStep(await readFile(file), file);
      assert.equal(step.leadHours, lead);
      assert.equal(step.initTime.toISOString(), INIT.toISOString());
      assert.deepEqual(step.data, expected.get(lead), `values of ${file}`);
    }
    const script = [
      "import sys, json, xarray as xr, numpy as np",
      "da = xr.open_dataarray(sys.argv[1])",
      "print(json.dumps({'dims': list(da.dims), 'shape': list(da.shape), 'time': str(da.time.values[0])[:19],",
      "  'step': int(da.sel(step=int(da.step.values[0])).step), 'level65': str(da.level.values[65]),",
      "  't2m': float(da.sel(level='t2m').values[0, 0, 9, 0])}))",
    ].join("\n");
    const seen = JSON.parse(execFileSync("/usr/bin/python3", ["-c", script, join(result.outputFolder, "024.nc")], { encoding: "utf8" }));
    const t2mChannel = 65;
    assert.deepEqual(seen, {
      dims: ["time", "step", "level", "lat", "lon"],
      shape: [1, 1, 70, GRID.lat, GRID.lon],
      time: "2023-10-12T06:00:00",
      step: 24,
      level65: "t2m",
      t2m: expected.get(24)![t2mChannel * GRID.lat * GRID.lon + 9 * GRID.lon],
    });
  });

  it("prints a summary that says what ran, where the outputs are and how long it took", () => {
    const text = summary(result, 12.3);
    assert.match(text, /Run 2023101206 done in 12\.3 s \(SYNTHETIC input, stand-in model, not a forecast\)/);
    assert.match(text, new RegExp(`job +${result.manifest.jobName} Completed in \\d+\\.\\d s`));
    assert.match(text, /4 steps \+6 h … \+24 h, cascade \[2, 1, 1\], grid 19×36/);
    assert.match(text, /files +4 × [\d.]+ MB/);
    // The dev stack's instance, the local runner's job times, the manifest's bytes; no prices in Pulumi.dev.yaml.
    assert.match(text, /usage +ml\.g4dn\.xlarge × 1: [\d.]+ s TransformStartTime → TransformEndTime \(the runtime saw [\d.]+ s\), [\d.]+ (KiB|MiB) written; cost unknown: set fuxi:cost \(fuxi:cost\.instanceHour\["ml\.g4dn\.xlarge"\], fuxi:cost\.storageGbMonth\.STANDARD;/);
    const priced = summary(result, 12.3, { prices: { currency: "CNY", instanceHour: { "ml.g4dn.xlarge": 3600 }, storageGbMonth: { STANDARD: 0 } }, noncurrentDays: 30 });
    const seconds = (result.jobs[0]!.transformEndTime!.getTime() - result.jobs[0]!.transformStartTime!.getTime()) / 1000;
    assert.ok(priced.includes(`written; CNY ${seconds.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`), priced);
    assert.equal(result.manifest.usage.instanceType, "ml.g4dn.xlarge");
    assert.match(text, /phases +models [\d.]+ s, input [\d.]+ s, upload\+trigger [\d.]+ s, job [\d.]+ s, copy [\d.]+ s, maps [\d.]+ s/);
    assert.ok(text.includes(`outputs    s3://fuxi-dev-data-local/output/2023101206/`));
    assert.ok(text.includes(`copied to  ${result.outputFolder}`));
  });

  it("renders valid, non-blank quick-look PNGs of the expected size", async () => {
    assert.deepEqual(result.quicklooks.map((q) => `${q.variable}@${q.leadHours}`).sort(), ["msl@24", "msl@6", "t2m@24", "t2m@6", "tp@24", "tp@6", "z500@24", "z500@6"]);
    for (const image of result.quicklooks) {
      const png = PNG.sync.read(await readFile(image.file));
      assert.equal(png.width, IMAGE_WIDTH);
      assert.equal(png.height, IMAGE_HEIGHT);
      const colours = new Set<number>();
      for (let i = 0; i < png.data.length; i += 4) colours.add((png.data[i] << 16) | (png.data[i + 1] << 8) | png.data[i + 2]);
      assert.ok(colours.size > 20, `${image.file} has only ${colours.size} colours`);
    }
  });
});

describe("local pipeline: duplicate deliveries and re-uploads (real trigger and runtime)", function () {
  this.timeout(180_000);

  it("a redelivered marker event starts no second job; a re-uploaded marker recomputes nothing", async () => {
    const workDir = await mkdtemp(join(tmpdir(), "fuxi-local-dup-"));
    const stack = loadLocalStack("dev", { cascadeSteps: [2] });
    await writeStandinModels(join(workDir, "models"), GRID);
    const local = await startLocalStackOnLoopback({ stack, workDir, modelDir: join(workDir, "models"), providers: ["cpu"] });
    const stepWrites: string[] = [];
    local.s3.onObjectCreated((r) => { if (/\/\d{3}\.nc$/.test(r.s3.object.key)) stepWrites.push(r.s3.object.key); });
    try {
      const input = await writeFuxiInputNetcdf4({ initTime: INIT, ...GRID });
      const first = await local.uploadRun("2023101206", "in.nc", input);
      assert.deepEqual(first.map((o) => o.decision), ["started"]);
      const jobName = first[0].jobName ?? "";

      // S3 delivers at least once: the same notification again, through the queue.
      local.notify(local.notifications()[0]);
      await local.settled();
      assert.deepEqual(local.outcomes("2023101206").map((o) => o.decision), ["started", "duplicate"]);
      assert.equal(local.runner.jobs().length, 1, "no second job for a redelivered event");
      assert.ok(local.runner.operations().filter((op) => op === "CreateTransformJob").length <= 2, "at most one more create, refused by name (ResourceInUse)");
      assert.equal((await local.runner.waitForJob(jobName, 120_000)).status, "Completed");
      assert.deepEqual([...stepWrites].sort(), ["output/2023101206/006.nc", "output/2023101206/012.nc"]);

      // An identical marker uploaded again is a new upload (new sequencer): per docs/contract.md it maps
      // to a new job name, and the runtime answers from the finished run without recomputing a step.
      await local.s3.client.send(new PutObjectCommand({ Bucket: stack.bucket, Key: "input/2023101206/_SUCCESS", Body: new Uint8Array(0), ContentLength: 0 }));
      await local.settled();
      const outcomes = local.outcomes("2023101206").slice(2);
      assert.deepEqual(outcomes.map((o) => o.decision), ["started"]);
      const second = outcomes[0].jobName ?? "";
      assert.notEqual(second, jobName);
      assert.equal((await local.runner.waitForJob(second, 120_000)).status, "Completed");
      assert.deepEqual([...stepWrites].sort(), ["output/2023101206/006.nc", "output/2023101206/012.nc"], "no step was written again");
      const runtimeLog = await readFile(join(local.logDir, "runtime.log"), "utf8");
      assert.match(runtimeLog, /run already complete; returning its manifest/);
    } finally {
      await local.stop();
      await rm(workDir, { recursive: true, force: true });
    }
  });
});

describe("local pipeline failures", function () {
  this.timeout(120_000);

  it("names the missing model files of --models before starting anything", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fuxi-models-"));
    try {
      await writeStandinModels(dir, GRID);
      await rm(join(dir, "medium"));
      await assert.rejects(
        runLocalPipeline({ stack: loadLocalStack("dev"), workDir: join(dir, "work"), initTime: INIT, grid: GRID, modelsDir: dir, providers: ["cpu"] }),
        new RegExp(`--models ${dir}: missing medium \\(expected the six FuXi files`),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("reports a failed job with its FailureReason and the runtime log", async () => {
    // Models for another grid: the runtime loads them, then rejects the input's grid.
    const dir = await mkdtemp(join(tmpdir(), "fuxi-wrong-grid-"));
    try {
      await writeStandinModels(join(dir, "models"), { lat: 10, lon: 20 });
      await assert.rejects(
        runLocalPipeline({ stack: loadLocalStack("dev", { cascadeSteps: [1] }), workDir: join(dir, "work"), initTime: INIT, grid: GRID, modelsDir: join(dir, "models"), providers: ["cpu"], quicklookLeads: false }),
        (error: Error) => {
          assert.match(error.message, /^transform job fuxi-dev-2023101206-[0-9a-f]{8} Failed: AlgorithmError: s3:\/\/fuxi-dev-data-local\/requests\/.*HTTP 400/);
          assert.ok(error.message.includes(join(dir, "work", "logs", "runtime.log")));
          return true;
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("npm start flags", () => {
  it("parses the documented flags and rejects bad values by name", () => {
    const defaults = parseCli([]);
    assert.notEqual(defaults, "help");
    if (defaults === "help") return;
    assert.equal(defaults.initTime.toISOString(), "2023-10-12T06:00:00.000Z");
    assert.deepEqual(defaults.grid, { lat: 181, lon: 360 });
    assert.equal(defaults.cascadeSteps, undefined, "the stack's cascade unless --steps");
    const full = parseCli(["--full", "--steps", "20,20,20", "--init", "2024010100", "--no-quicklook"]);
    assert.ok(full !== "help");
    assert.deepEqual(full.grid, { lat: 721, lon: 1440 });
    assert.deepEqual(full.cascadeSteps, [20, 20, 20]);
    assert.equal(full.leads, false);
    assert.equal(parseCli(["--help"]), "help");
    assert.throws(() => parseCli(["--init", "2023101207"]), /--init must be YYYYMMDDHH with HH one of 00, 06, 12, 18/);
    assert.throws(() => parseCli(["--init", "2023023006"]), /--init must be YYYYMMDDHH/);
    assert.throws(() => parseCli(["--steps", "20,x"]), /--steps must be 1 to 3 comma-separated whole numbers/);
    assert.throws(() => parseCli(["--grid", "10by20"]), /--grid must be LATxLON/);
    assert.throws(() => parseCli(["--full", "--grid", "19x36"]), /cannot be combined/);
    assert.throws(() => parseCli(["--models", "/nonexistent/fuxi"]), /--models \/nonexistent\/fuxi: no such file or folder/);
    assert.throws(() => parseCli(["--providers", "tpu"]), /--providers must list cuda and\/or cpu/);
  });

  it("rejects a cascade the stack's own validation rejects, naming the file", () => {
    assert.throws(() => loadLocalStack("dev", { cascadeSteps: [30, 1] }), /Pulumi\.dev\.yaml: .*cascadeSteps/s);
    assert.throws(() => loadLocalStack("nope"), /Pulumi\.nope\.yaml does not exist/);
  });
});
