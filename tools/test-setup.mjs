// First step of `npm test`: the tests read NetCDF files with real readers (ncdump/ncgen from netcdf-bin,
// the HDF Group's h5dump from hdf5-tools, and Debian's /usr/bin/python3 with xarray + netCDF4). Installs them when missing and this is root (CI,
// containers); otherwise prints the one command to run and exits non-zero before any test runs.
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

export const APT_PACKAGES = ["netcdf-bin", "hdf5-tools", "python3-xarray", "python3-netcdf4"];
const PYTHON = "/usr/bin/python3";

function onPath(command) {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

function missingReaders() {
  const missing = [];
  for (const tool of ["ncdump", "ncgen"]) if (!onPath(tool)) missing.push(`${tool} (netcdf-bin)`);
  if (!onPath("h5dump")) missing.push("h5dump (hdf5-tools)");
  const python = spawnSync(PYTHON, ["-c", "import xarray, netCDF4"], { stdio: "ignore" });
  if (python.status !== 0) missing.push(`${PYTHON} with xarray and netCDF4 (python3-xarray python3-netcdf4)`);
  return missing;
}

function sh(command, args) {
  console.log(`$ ${command} ${args.join(" ")}`);
  const result = spawnSync(command, args, { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  if (result.status !== 0) {
    console.error(`test set-up: \`${command} ${args.join(" ")}\` failed (${result.error?.message ?? `exit ${result.status}`})`);
    process.exit(1);
  }
}

const installArgs = ["install", "-y", "-q", "--no-install-recommends", ...APT_PACKAGES];
const missing = missingReaders();
if (missing.length > 0) {
  const command = `sudo apt-get update && sudo apt-get install -y --no-install-recommends ${APT_PACKAGES.join(" ")}`;
  if (process.getuid?.() !== 0 || !onPath("apt-get")) {
    console.error(`npm test needs the NetCDF readers the tests check files with; missing: ${missing.join("; ")}.`);
    console.error(onPath("apt-get") ? `Install them with:\n\n  ${command}\n` : `Install them (Debian/Ubuntu: ${command}), then run npm test again.`);
    process.exit(1);
  }
  console.log(`test set-up: installing the NetCDF readers (${missing.join("; ")} missing)`);
  sh("apt-get", ["update", "-q"]);
  sh("apt-get", installArgs);
  const still = missingReaders();
  if (still.length > 0) {
    console.error(`test set-up: still missing after apt-get install: ${still.join("; ")}`);
    process.exit(1);
  }
}
