// Per-run folders under FUXI_SCRATCH_DIR, named run-<pid>-<random>. A process killed mid-run cannot
// remove its folder (up to ~1.2 GB), so a starting runtime removes the folders of processes that no
// longer exist; folders of live processes (another runtime sharing the directory) are left alone.
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { join } from "node:path";

export async function createRunDir(root: string): Promise<string> {
  await mkdir(root, { recursive: true });
  return mkdtemp(join(root, `run-${process.pid}-`));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"; // alive, owned by another user
  }
}

/**
 * Call before the first run: removes run folders whose process has exited, and any named with this
 * process's pid (a restarted container can reuse a pid). Returns the names removed.
 */
export async function removeStaleRunDirs(root: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const stale = names.filter((name) => {
    const pid = Number(/^run-(\d+)-/.exec(name)?.[1] ?? NaN);
    return Number.isInteger(pid) && (pid === process.pid || !isAlive(pid));
  });
  await Promise.all(stale.map((name) => rm(join(root, name), { recursive: true, force: true })));
  return stale;
}
