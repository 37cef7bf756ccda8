// The contract crosses from the trigger (writer) to the runtime (reader), and docs/contract.md is its
// readable version: every request the trigger can build passes the runtime's parser unchanged, and
// the names, tables and examples in the docs are the ones in runtime/src/contract/.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  CHANNEL_NAMES,
  FAILED_NAME,
  HOURS_PER_STEP,
  inputFolderKey,
  MANIFEST_NAME,
  MARKER_NAME,
  MODEL_FILES,
  parseForecastRequest,
  REQUEST_EVENT_FIELDS,
  REQUEST_FIELDS,
  RUNTIME_ENV_NAMES,
  RUNTIME_LOG_EVENTS,
  RUNTIME_REQUIRED_ENV_NAMES,
  SAGEMAKER_NAME_PATTERN,
  STAGE_NAMES,
  STEP_METADATA,
  TRANSFORM_FOLDER,
  transformJobName,
  TRIGGER_ENV_NAMES,
  TRIGGER_REQUIRED_ENV_NAMES,
} from "../runtime/src/contract";
import { timeEmbedding } from "../runtime/src/time-embedding";
import { readTriggerEnv } from "../trigger/env";
import type { Marker } from "../trigger/event";
import { buildForecastRequest } from "../trigger/request";
import { TEST_ENV } from "./trigger-fixtures";

const ROOT = join(__dirname, "..");
const CONTRACT_DOC = readFileSync(join(ROOT, "docs", "contract.md"), "utf8");
const MODEL_DOC = readFileSync(join(ROOT, "docs", "fuxi-model.md"), "utf8");

const config = readTriggerEnv(TEST_ENV);
const lanes = { bucket: config.dataBucket, inputPrefix: config.inputPrefix, outputPrefix: config.outputPrefix };
const base: Marker = {
  bucket: TEST_ENV.DATA_BUCKET,
  key: "input/2023101206/_SUCCESS",
  runId: "2023101206",
  eventName: "ObjectCreated:Put",
  eventTime: "2026-11-22T05:59:58.000Z",
};

const cases: Array<[string, Marker, string]> = [
  ["unversioned bucket (sequencer only)", { ...base, sequencer: "0055AED6DCD90281E5" }, "fuxi_input.nc"],
  ["versioned bucket (versionId and sequencer)", { ...base, versionId: "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", sequencer: "0055AED6DCD90281E5" }, "fuxi_input.nc"],
  ["versionId only", { ...base, versionId: "3HL4kqtJlcpXroDTDmJ" }, "fuxi_input.nc"],
  ["upper-case .NC extension", { ...base, sequencer: "0055AED6DCD90281E6" }, "ERA5 input.NC"],
  ["runId with spaces and unicode", { ...base, key: "input/run 你好/_SUCCESS", runId: "run 你好", sequencer: "0055AED6DCD90281E7" }, "in.nc"],
];

describe("contract: trigger request → runtime validation", () => {
  for (const [name, marker, fileName] of cases) {
    it(`the runtime accepts what the trigger writes: ${name}`, () => {
      const jobName = transformJobName(config.jobNamePrefix, marker.runId, marker);
      const inputKey = `${inputFolderKey(config.inputPrefix, marker.runId)}${fileName}`;
      const written = buildForecastRequest(config, marker, jobName, inputKey, new Date("2026-11-22T06:00:00Z"));
      const read = parseForecastRequest(JSON.stringify(written), lanes);
      assert.deepEqual(read, written);
      assert.equal(read.outputPrefix, `s3://${config.dataBucket}/output/${marker.runId}/`);
      assert.deepEqual(read.cascadeSteps, [20, 20, 20]);
    });
  }

  it("the trigger refuses to build a request the runtime would reject", () => {
    const marker = { ...base, sequencer: "0055AED6DCD90281E5" };
    const jobName = transformJobName(config.jobNamePrefix, marker.runId, marker);
    assert.throws(() => buildForecastRequest(config, marker, jobName, "input/2023101206/sub/x.nc", new Date()), /request field input: must be s3:\/\/fuxi-trigger-test\/input\/2023101206\/<name>\.nc/);
    assert.throws(() => buildForecastRequest(config, marker, `${config.jobNamePrefix}-2023101206-00000000`, "input/2023101206/x.nc", new Date()), /request field jobName: must end in/);
  });
});

/** The rows of the markdown table under `heading` (first column, backticks removed). */
function tableColumn(doc: string, heading: string): string[] {
  const start = doc.indexOf(heading);
  assert.ok(start >= 0, `no section "${heading}"`);
  const rest = doc.slice(start + heading.length);
  const end = rest.search(/\n#{2,3} /);
  const section = end < 0 ? rest : rest.slice(0, end);
  return section
    .split("\n")
    .filter((line) => line.startsWith("|") && !/^\|\s*-/.test(line))
    .slice(1)
    .map((line) => line.split("|")[1].trim().replace(/`/g, ""));
}

function jsonBlockAfter(doc: string, heading: string): unknown {
  const start = doc.indexOf(heading);
  const block = /```json\n([\s\S]*?)```/.exec(doc.slice(start));
  assert.ok(start >= 0 && block, `no JSON example after "${heading}"`);
  return JSON.parse(block[1]);
}

describe("contract: docs/contract.md and runtime/src/contract/ say the same", () => {
  it("names the module", () => assert.match(CONTRACT_DOC, /runtime\/src\/contract\//));

  it("lists the trigger's environment variables, required ones marked", () => {
    assert.deepEqual(tableColumn(CONTRACT_DOC, "## Trigger Lambda environment"), [...TRIGGER_ENV_NAMES]);
    const requiredLine = /The required ones: (.*)\./.exec(CONTRACT_DOC)?.[1] ?? "";
    assert.deepEqual(requiredLine.split(", ").map((n) => n.replace(/`/g, "")), [...TRIGGER_REQUIRED_ENV_NAMES]);
  });

  it("lists the runtime's environment variables, required ones marked", () => {
    const rows = tableColumn(CONTRACT_DOC, "## Runtime environment");
    assert.deepEqual([...rows].sort(), [...RUNTIME_ENV_NAMES].sort());
    const section = CONTRACT_DOC.slice(CONTRACT_DOC.indexOf("## Runtime environment"));
    for (const name of RUNTIME_REQUIRED_ENV_NAMES) assert.match(section, new RegExp(`\\| \`${name}\` \\| \\(required\\)`), `${name} marked required`);
  });

  it("lists every runtime log event", () => {
    assert.deepEqual(tableColumn(CONTRACT_DOC, "## Runtime log events").sort(), Object.values(RUNTIME_LOG_EVENTS).sort());
  });

  it("lists the request's fields and its example passes the parser with the documented lanes", () => {
    const example = jsonBlockAfter(CONTRACT_DOC, "## Forecast request object") as Record<string, unknown>;
    assert.deepEqual(Object.keys(example), [...REQUEST_FIELDS]);
    assert.deepEqual(Object.keys(example.event as object), [...REQUEST_EVENT_FIELDS]);
    assert.deepEqual(parseForecastRequest(JSON.stringify(example), { bucket: "fuxi-data", inputPrefix: "input/", outputPrefix: "output/" }), example);
  });

  it("uses the layout's names and the step metadata", () => {
    const layout = CONTRACT_DOC.slice(CONTRACT_DOC.indexOf("## S3 layout"), CONTRACT_DOC.indexOf("## Forecast request object"));
    for (const name of [MARKER_NAME, MANIFEST_NAME, FAILED_NAME, TRANSFORM_FOLDER, `x-amz-meta-${STEP_METADATA.fingerprint}`, `x-amz-meta-${STEP_METADATA.sha256}`]) {
      assert.ok(layout.includes(name), `S3 layout mentions ${name}`);
    }
    assert.ok(CONTRACT_DOC.includes(SAGEMAKER_NAME_PATTERN.source.slice(1, -1)), "job-name pattern");
  });
});

describe("contract: docs/fuxi-model.md and the code say the same", () => {
  it("channels, stages, model files and step length", () => {
    const channels = /Channel names in order: (.*)\./.exec(MODEL_DOC)?.[1].split(", ").map((c) => c.replace(/`/g, ""));
    assert.deepEqual(channels, [...CHANNEL_NAMES]);
    const files = /The six files: (.*)\./.exec(MODEL_DOC)?.[1].split(", ").map((c) => c.replace(/`/g, ""));
    assert.deepEqual(files, [...MODEL_FILES]);
    assert.match(MODEL_DOC, new RegExp(`Stages: ${STAGE_NAMES.join(", ")}`));
    assert.match(MODEL_DOC, new RegExp(`${HOURS_PER_STEP}-hourly`));
  });

  it("the time embedding reproduces the documented test vector", () => {
    const vector = JSON.parse(/Test vector, t0 = 2023-10-12 06:00Z, step 0:\n`(\[.*\])`/.exec(MODEL_DOC)![1]) as number[];
    const computed = timeEmbedding(new Date("2023-10-12T06:00:00Z"), 0);
    vector.forEach((v, i) => assert.ok(Math.abs(computed[i] - v) < 1e-6, `temb[${i}] ${computed[i]} vs ${v}`));
  });

  it("nothing in the repository points outside it", () => {
    const { execFileSync } = require("node:child_process") as typeof import("node:child_process");
    let hits = "";
    try {
      hits = execFileSync("git", ["grep", "-n", "-I", "-E", "\\.\\./shared|/work/shared", "--", ".", ":!test/contract.test.ts"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    } catch (error) {
      if ((error as { status?: number }).status !== 1) throw error; // 1: no match
    }
    assert.equal(hits.trim(), "");
  });
});
