// A fresh machine's set-up: the pinned Node (the one the Lambda and the image run) runs the tests, the
// install needs no environment variable, and `npm test` stops at once with the one command when it cannot
// install the NetCDF readers itself.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const REPO_ROOT = join(__dirname, "..");
const read = (path: string) => readFileSync(join(REPO_ROOT, path), "utf8");
const json = (path: string) => JSON.parse(read(path));
const PINNED = read(".nvmrc").trim();

describe("fresh-machine set-up", () => {
  it(`tests run on the pinned Node ${PINNED}, which package.json, runtime/ and the Dockerfile name too`, () => {
    assert.equal(process.version, `v${PINNED}`, "npm scripts put node_modules/.bin/node (node-<platform>-<arch>) first on PATH");
    const root = json("package.json");
    assert.equal(root.engines.node, `^${PINNED}`);
    assert.equal(json("runtime/package.json").engines.node, `^${PINNED}`);
    for (const name of Object.keys(root.optionalDependencies).filter((n) => n.startsWith("node-"))) assert.equal(root.optionalDependencies[name], PINNED, name);
    assert.match(read("runtime/Dockerfile"), new RegExp(`^ARG NODE_VERSION=${PINNED.replace(/\./g, "\\.")}$`, "m"));
  });

  it("the AWS SDK prints no Node version warning on the pinned Node (and does on an older one)", function () {
    const probe = ["-e", `new (require("@aws-sdk/client-s3").S3Client)({ region: "cn-northwest-1" }).config.region().then(() => undefined)`];
    const pinned = spawnSync(process.execPath, probe, { cwd: REPO_ROOT, encoding: "utf8" });
    assert.equal(pinned.status, 0, pinned.stderr);
    assert.doesNotMatch(pinned.stderr, /NodeVersionSupportWarning/);
    const system = "/usr/bin/node";
    const version = existsSync(system) ? spawnSync(system, ["-p", "process.versions.node"], { encoding: "utf8" }).stdout.trim() : "";
    if (!version || Number(version.split(".")[0]) >= 22) return; // no older Node here to show the check can fail
    assert.match(spawnSync(system, probe, { cwd: REPO_ROOT, encoding: "utf8" }).stderr, /NodeVersionSupportWarning/);
  });

  it("installing needs no environment variable: runtime/ denies onnxruntime-node's CUDA download, the image runs it explicitly", () => {
    assert.equal(json("runtime/package.json").allowScripts["onnxruntime-node"], false);
    assert.doesNotMatch(read(".ci/run"), /ONNXRUNTIME_NODE_INSTALL/);
    const dockerfile = read("runtime/Dockerfile");
    // Production default (the local CPU variant passes skip as a build argument).
    assert.match(dockerfile, /^ARG ONNXRUNTIME_NODE_INSTALL=cuda12$/m);
    assert.match(dockerfile, /cuda12\) node node_modules\/onnxruntime-node\/script\/install/);
    assert.match(dockerfile, /libonnxruntime_providers_cuda\.so/);
  });

  it("npm test without the NetCDF readers, not as root: prints the one command and exits 1 before any test", function () {
    if (process.getuid?.() !== 0) this.skip(); // switching to an unprivileged user needs root
    const bin = mkdtempSync(join(tmpdir(), "fuxi-path-"));
    try {
      chmodSync(bin, 0o755);
      symlinkSync("/usr/bin/apt-get", join(bin, "apt-get"));
      const result = spawnSync(process.execPath, [join(REPO_ROOT, "tools", "test-setup.mjs")], { uid: 65534, gid: 65534, env: { PATH: bin }, encoding: "utf8" });
      assert.equal(result.status, 1, result.stderr);
      assert.match(result.stderr, /missing: ncdump \(netcdf-bin\); ncgen \(netcdf-bin\); h5dump \(hdf5-tools\)/);
      assert.match(result.stderr, /^ {2}sudo apt-get update && sudo apt-get install -y --no-install-recommends netcdf-bin hdf5-tools python3-xarray python3-netcdf4$/m);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});
