import { readdirSync } from "node:fs";
import { join } from "node:path";

const REPO_ROOT = join(__dirname, "..", "..");

/**
 * The first absolute path into this checkout that `text` contains (REPO_ROOT joined with one of its
 * top-level entries), else undefined. Matching REPO_ROOT alone would flag any "/p" in text when the
 * checkout lives at a short path such as /p.
 */
export function repoPathIn(text: string): string | undefined {
  return readdirSync(REPO_ROOT).map((entry) => join(REPO_ROOT, entry)).find((path) => text.includes(path));
}
