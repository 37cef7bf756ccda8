/**
 * Runs the real Pulumi program (index.ts, real Pulumi.<stack>.yaml) under
 * `pulumi.runtime.setMocks`, without the CLI or AWS, and returns every resource
 * it registered with its resolved inputs.
 *
 * Each call runs in a fresh child process (tools/mock-program-runner.ts under
 * tsx): Pulumi's runtime state is global to a process, so this is what makes
 * several runs in one test process independent. A run takes a few seconds.
 *
 * Secrets: `inputs` hold secret values UNWRAPPED (plain); `secretInputs` lists
 * the dotted input paths that were secret.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface MockedResource {
  /** e.g. "aws:iam/rolePolicy:RolePolicy", or a component type such as "fuxi:trigger:Trigger" */
  type: string;
  name: string;
  urn: string;
  /** Custom resources are managed by a provider; components are not. */
  custom: boolean;
  /**
   * Fully resolved inputs as plain JSON: secrets unwrapped (see secretInputs), assets as
   * {__asset: {text|path|uri}}, archives as {__archive: {assets|path|uri}}, resource references as URNs.
   */
  inputs: Record<string, any>;
  /** What the mocks returned as the resource's state (inputs plus mocked names, ARNs, URLs), plain like `inputs`. */
  outputs: Record<string, any>;
  /** Dotted paths in `inputs` whose values were secret, e.g. "registry.password". */
  secretInputs: string[];
  /** URN of the parent (the stack resource for top-level components). */
  parent?: string;
  /** URNs of every direct dependency: explicit dependsOn plus those implied by inputs. */
  dependsOn: string[];
  /** Input name → URNs that input was computed from, as the engine records them (policy packs link resources with it). */
  propertyDependencies: Record<string, string[]>;
  /** Provider reference, when the engine was given one. */
  provider?: string;
  /** Read with `Resource.get` (an existing resource the stack does not manage). */
  external?: boolean;
  /** Resource options the engine is told (data safety: protect, retainOnDelete, aliases). */
  options?: { protect: boolean; retainOnDelete: boolean; ignoreChanges: string[]; aliases: string[] };
}

export interface MockRunOptions {
  stack: "dev" | "prod";
  /** Overrides aws:region (the partition of every mocked ARN follows it). */
  region?: string;
  /** Config overrides by full key, e.g. {"fuxi:transform": {...}}; null deletes the key. */
  config?: Record<string, unknown>;
  /** Full keys to treat as secrets, e.g. ["fuxi:alerts"]. */
  secretKeys?: string[];
  /** Account the mocked getCallerIdentity returns (default 123456789012). */
  accountId?: string;
  /** "s3://bucket/key" objects the mocked account holds (aws.s3.getObjects); omitted: any object looked up exists. */
  s3Objects?: string[];
  /**
   * Existing buckets the account holds, by name: what reading them (fuxi:dataBucket.existingName)
   * returns. A setting left out is absent in S3, so reading it fails as AWS's read does.
   */
  existingBuckets?: Record<string, ExistingBucket>;
}

/** An existing bucket's settings as the provider reads them (resource state shapes of @pulumi/aws 7). */
export interface ExistingBucket {
  publicAccessBlock?: Record<string, unknown>;
  serverSideEncryption?: Record<string, unknown>;
  versioning?: Record<string, unknown>;
  lifecycle?: Record<string, unknown>;
  policy?: string;
  /** aws.s3.getBucketNotification's answer (default: no rules). */
  notification?: Record<string, unknown>;
}

export interface MockRunResult {
  resources: MockedResource[];
  outputs: Record<string, unknown>;
}

/** An existing bucket with every setting the policy pack asks for (tests adopt it, then break one setting). */
export function wellKeptBucket(name: string, partition = "aws-cn"): ExistingBucket {
  const arn = `arn:${partition}:s3:::${name}`;
  return {
    publicAccessBlock: { blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
    serverSideEncryption: { rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms" } }] },
    versioning: { versioningConfiguration: { status: "Enabled" } },
    lifecycle: { rules: [{ id: "abort", status: "Enabled", filter: {}, abortIncompleteMultipartUpload: { daysAfterInitiation: 3 } }] },
    policy: JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Deny", Principal: "*", Action: "s3:*", Resource: [arn, `${arn}/*`], Condition: { Bool: { "aws:SecureTransport": "false" } } }] }),
  };
}

const REPO_ROOT = join(__dirname, "..");
const RUNNER = join(__dirname, "mock-program-runner.ts");

/** Thrown when the program fails; `message` is the program's own error (e.g. the config problems). */
export class MockProgramError extends Error {
  override name = "MockProgramError";
}

export async function runProgramUnderMocks(options: MockRunOptions): Promise<MockRunResult> {
  const dir = mkdtempSync(join(tmpdir(), "fuxi-mock-program-"));
  try {
    const optionsFile = join(dir, "options.json");
    const resultFile = join(dir, "result.json");
    writeFileSync(optionsFile, JSON.stringify(options));
    const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, ["--import", "tsx", RUNNER, optionsFile, resultFile], { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 }, (error, _stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stderr });
      });
    });
    let result: { ok: true; resources: MockedResource[]; outputs: Record<string, unknown> } | { ok: false; error: string } | undefined;
    try {
      result = JSON.parse(readFileSync(resultFile, "utf8"));
    } catch {
      throw new MockProgramError(`mock program runner exited with ${code} and wrote no result; stderr:\n${stderr}`);
    }
    if (!result!.ok) throw new MockProgramError(result!.error);
    return { resources: result!.resources, outputs: result!.outputs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
