// The request object crosses from the trigger (writer) to the runtime (reader): every request the
// trigger can build must pass the runtime's validation unchanged (docs/contract.md).
import assert from "node:assert/strict";
import { parseForecastRequest } from "../runtime/src/request";
import { readTriggerEnv } from "../trigger/env";
import type { Marker } from "../trigger/event";
import { transformJobName } from "../trigger/job-name";
import { buildForecastRequest, runFolderKey } from "../trigger/request";
import { TEST_ENV } from "./trigger-fixtures";

const config = readTriggerEnv(TEST_ENV);
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
      const inputKey = `${runFolderKey(config, marker.runId)}${fileName}`;
      const written = buildForecastRequest(config, marker, jobName, inputKey, new Date("2026-11-22T06:00:00Z"));
      const read = parseForecastRequest(JSON.stringify(written));
      assert.deepEqual(read, written);
      assert.equal(read.outputPrefix, `s3://${config.dataBucket}/output/${marker.runId}/`);
      assert.deepEqual(read.cascadeSteps, [20, 20, 20]);
    });
  }
});
