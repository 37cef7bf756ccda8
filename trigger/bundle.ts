import { build } from "esbuild";
import { join } from "node:path";

const REPO_ROOT = join(__dirname, "..");

/**
 * The trigger Lambda as one CommonJS file (`exports.handler`), with the AWS SDK clients it uses bundled
 * in, so the deployed code runs the SDK versions pinned in package-lock.json rather than the one in the
 * Lambda runtime. Deterministic: the same sources give the same bytes.
 */
export async function bundleTriggerHandler(): Promise<{ code: string; sizeBytes: number }> {
  const result = await build({
    absWorkingDir: REPO_ROOT,
    entryPoints: [join(REPO_ROOT, "trigger", "handler.ts")],
    bundle: true,
    platform: "node",
    target: "node22",
    format: "cjs",
    // The ES module builds ("module") let esbuild drop the unused parts of the SDK clients and zod/mini;
    // the CommonJS builds would bring in every SageMaker operation's schema.
    mainFields: ["module", "main"],
    minify: true,
    write: false,
    logLevel: "silent",
    legalComments: "none",
    tsconfig: join(REPO_ROOT, "tsconfig.json"),
  });
  const code = result.outputFiles[0].text;
  return { code, sizeBytes: Buffer.byteLength(code, "utf8") };
}
