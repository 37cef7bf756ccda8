// Shared helpers for the runtime tests and benchmark: FuXi input files written by a real
// NetCDF writer (Debian's python3 + xarray, as the original tooling wrote them) and the runtime
// server as a child process, exactly as the local pipeline starts it.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { writeFile, readFile, rm, mkdtemp } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { RUNTIME_FROM_SOURCE } from "../../local/runtime-process";
import { CHANNEL_NAMES, RUNTIME_PROCESS_ENV, formatS3Uri, inputFolderKey, markerKey, outputFolderKey, RUNTIME_ENV, RUNTIME_LOG_EVENTS, runtimeLogEvent, transformJobName, type RequestLanes } from "../../runtime/src/contract";

const run = promisify(execFile);
export const REPO_ROOT = resolve(__dirname, "..", "..");
/** Debian's python with xarray + netCDF4 (plain `python3` on PATH lacks them). */
export const SYSTEM_PYTHON = "/usr/bin/python3";

export const LEVELS = CHANNEL_NAMES;

/** The stack lanes the test runtimes serve (FUXI_DATA_BUCKET, FUXI_INPUT_PREFIX, FUXI_OUTPUT_PREFIX). */
export const TEST_LANES: RequestLanes = { bucket: "fuxi-data", inputPrefix: "input/", outputPrefix: "output/" };
export const TEST_LANES_ENV: Record<string, string> = {
  [RUNTIME_ENV.dataBucket]: TEST_LANES.bucket,
  [RUNTIME_ENV.inputPrefix]: TEST_LANES.inputPrefix,
  [RUNTIME_ENV.outputPrefix]: TEST_LANES.outputPrefix,
};

export interface InputSpec {
  lat: number;
  lon: number;
  /** t0, the time of the second frame. */
  initTime: Date;
  /** [2, 70, lat, lon]; defaults to syntheticWindow(). */
  data?: Float32Array;
  /** Faults to build into the file. */
  fault?: "reverse-latitude" | "nan" | "missing-variable" | "wrong-channel" | "netcdf3";
}

/** Deterministic, smooth, physically-shaped-enough values: [2, 70, lat, lon]. */
export function syntheticWindow(lat: number, lon: number): Float32Array {
  const data = new Float32Array(2 * 70 * lat * lon);
  let i = 0;
  for (let t = 0; t < 2; t++)
    for (let c = 0; c < 70; c++)
      for (let y = 0; y < lat; y++)
        for (let x = 0; x < lon; x++) data[i++] = 100 + c * 3 + Math.sin(y * 0.3 + c) * 10 + Math.cos(x * 0.2) * 5 + t * 0.5;
  return data;
}

const WRITER = `
import json, sys
import numpy as np, pandas as pd, xarray as xr
spec = json.loads(sys.argv[1])
lat_n, lon_n = spec["lat"], spec["lon"]
data = np.fromfile(spec["raw"], dtype="<f4").reshape(2, 70, lat_n, lon_n)
lat = np.linspace(90, -90, lat_n)
lon = np.arange(lon_n) * (360.0 / lon_n)
levels = spec["levels"]
fault = spec.get("fault")
if fault == "reverse-latitude":
    lat = lat[::-1]
if fault == "nan":
    data = data.copy(); data[1, 3, 1, 2] = np.nan
t0 = pd.Timestamp(spec["init"]).tz_localize(None)
times = [t0 - pd.Timedelta(hours=6), t0]
da = xr.DataArray(data, dims=("time", "level", "lat", "lon"),
                  coords={"time": times, "level": levels, "lat": lat, "lon": lon}, name="data")
ds = da.to_dataset()
if fault == "missing-variable":
    ds = ds.drop_vars("data")
ds.to_netcdf(spec["out"], format="NETCDF3_64BIT" if fault == "netcdf3" else "NETCDF4")
`;

/** Writes a FuXi input file with xarray and returns its bytes. */
export async function writeInputWithXarray(path: string, spec: InputSpec): Promise<Buffer> {
  const data = spec.data ?? syntheticWindow(spec.lat, spec.lon);
  const raw = `${path}.raw`;
  await writeFile(raw, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  const levels = spec.fault === "wrong-channel" ? LEVELS.map((l, i) => (i === 5 ? "q200" : l)) : LEVELS;
  const args = { lat: spec.lat, lon: spec.lon, raw, out: path, levels, init: spec.initTime.toISOString(), fault: spec.fault };
  try {
    await run(SYSTEM_PYTHON, ["-c", WRITER, JSON.stringify(args)], { maxBuffer: 1 << 20 });
  } finally {
    await rm(raw, { force: true });
  }
  return readFile(path);
}

/** Runs a Python snippet with Debian's python3 (xarray, netCDF4), returning stdout. */
export async function python(code: string, args: string[] = []): Promise<string> {
  const { stdout } = await run(SYSTEM_PYTHON, ["-c", code, ...args], { maxBuffer: 64 << 20 });
  return stdout;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

export interface RuntimeChild {
  url: string;
  child: ChildProcess;
  /** Parsed JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  /** Raw stderr text. */
  stderr: () => string;
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  waitUntilReady(timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The runtime from source, started as the local pipeline starts it. */
export const TSX_ENTRY = RUNTIME_FROM_SOURCE;
export const COMPILED_ENTRY = [join(REPO_ROOT, "runtime", "dist", "main.js")];

/**
 * Starts `tsx runtime/src/main.ts <args>` as the local pipeline does (CPU, loopback S3 env), or the
 * compiled entry point when `entry` is COMPILED_ENTRY.
 */
export async function startRuntimeChild(
  env: Record<string, string>,
  args: string[] = ["serve"],
  entry: string[] = TSX_ENTRY,
  user: { uid: number; gid: number } | undefined = undefined,
): Promise<RuntimeChild> {
  const port = await freePort();
  const child = spawn(process.execPath, [...entry, ...args], {
    cwd: REPO_ROOT,
    ...user,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...RUNTIME_PROCESS_ENV, FUXI_PROVIDERS: "cpu", FUXI_ALLOW_CPU: "true", SAGEMAKER_BIND_TO_PORT: String(port), ...TEST_LANES_ENV, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Array<Record<string, unknown>> = [];
  const waiters: Array<{ predicate: (line: Record<string, unknown>) => boolean; resolve(line: Record<string, unknown>): void }> = [];
  let buffered = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    buffered += chunk;
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const text = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text);
      } catch {
        line = { msg: text, unparsed: true };
      }
      logs.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.predicate(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolveExit) => child.once("exit", (code) => resolveExit(code)));
  const url = `http://127.0.0.1:${port}`;
  const waitForLog = (predicate: (line: Record<string, unknown>) => boolean, timeoutMs = 60_000) => {
    const seen = logs.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((resolveLine, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}; last logs: ${JSON.stringify(logs.slice(-5))}`)), timeoutMs);
      waiters.push({
        predicate,
        resolve(line) {
          clearTimeout(timer);
          resolveLine(line);
        },
      });
      exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`runtime exited (code ${code}) before the expected log line; stderr: ${stderr.slice(-2000)}`));
      });
    });
  };
  return {
    url,
    child,
    logs,
    stderr: () => stderr,
    waitForLog,
    async waitUntilReady(timeoutMs = 60_000) {
      await waitForLog((line) => runtimeLogEvent(line, RUNTIME_LOG_EVENTS.ready) !== undefined, timeoutMs);
    },
    exited,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}

export async function tempDir(name: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `fuxi-${name}-`));
}

export interface HttpResult {
  status: number;
  body: string;
  ms: number;
}

/**
 * One HTTP request with node:http and no client timeout: an invocation may run for up to an hour
 * (InvocationsTimeoutInSeconds ≤ 3600), past fetch's 300 s headers timeout on a loaded machine.
 */
export function http(method: string, url: string, body?: string): Promise<HttpResult> {
  const started = performance.now();
  return new Promise((resolveResult, reject) => {
    const request = httpRequest(url, { method, headers: body === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("error", reject);
      response.on("end", () => resolveResult({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), ms: performance.now() - started }));
    });
    request.on("error", reject);
    request.end(body);
  });
}

/** A version-1 forecast request (docs/contract.md) for `runId`, inside `lanes`, as the trigger writes it. */
export function forecastRequest(runId: string, cascadeSteps: number[], overrides: Record<string, unknown> = {}, lanes: RequestLanes = TEST_LANES): Record<string, unknown> {
  const { bucket } = lanes;
  const event = { bucket, key: markerKey(lanes.inputPrefix, runId), sequencer: "0055AED6DCD90281E5", eventName: "ObjectCreated:Put", eventTime: "2026-11-22T05:59:58.000Z" };
  return {
    version: 1,
    jobName: transformJobName("fuxi-test", runId, event),
    runId,
    input: `${formatS3Uri({ bucket, key: inputFolderKey(lanes.inputPrefix, runId) })}fuxi_input.nc`,
    outputPrefix: formatS3Uri({ bucket, key: outputFolderKey(lanes.outputPrefix, runId) }),
    cascadeSteps,
    outputFormat: "netcdf4",
    compression: "none",
    requestedAt: "2026-11-22T06:00:00.000Z",
    event,
    ...overrides,
  };
}
