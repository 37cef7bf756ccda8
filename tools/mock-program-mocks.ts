/**
 * Pieces of the mock runner that tests use directly: the stack file reader, the
 * mocks (AWS answers computed the way AWS computes them) and the wire-format
 * converter.
 */
import type * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import type { ExistingBucket } from "./mock-program";

const REPO_ROOT = join(__dirname, "..");
/** Signatures of special values in Pulumi's wire format (sdk/nodejs/runtime/rpc.ts). */
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SIG = {
  secret: "1b47061264138c4ac30d75fd1eb44270",
  asset: "c44067f5952c0a294b673a41bacd8c17",
  archive: "0def7320c3a5731c473e5ecbe6d01bc7",
  resourceReference: "5cf8f73096256a8f31e491e813e4eb8e",
  outputValue: "d0e6a833031e9bbcd3f4e8bde6ca49a4",
};
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** Stack file config as Pulumi hands it to a program: "ns:key" → string, structured values as JSON. */
export function stackConfig(stack: string, overrides: Record<string, unknown> = {}): Record<string, string> {
  const file = join(REPO_ROOT, `Pulumi.${stack}.yaml`);
  const doc = parseYaml(readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
  const merged: Record<string, unknown> = { ...(doc?.config ?? {}), ...overrides };
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(merged)) {
    if (value === null || value === undefined) continue;
    if (typeof value === "object" && value !== null && "secure" in value) {
      throw new Error(`${file}: ${key} is an encrypted secret, which cannot be decrypted without the Pulumi CLI; pass a plain value in config overrides and list the key in secretKeys`);
    }
    out[key] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return out;
}

function autoname(name: string): string {
  return `${name}-${createHash("sha256").update(name).digest("hex").slice(0, 7)}`;
}

/**
 * Wire-format inputs → plain JSON: secrets unwrapped (their paths collected),
 * assets as {__asset: {text|path|uri}}, archives as {__archive: {assets|path|uri}},
 * resource references as their URN, unknowns as "<unknown>".
 */
export function plainInputs(value: unknown, secrets: string[], path: string[] = []): unknown {
  if (value === UNKNOWN) return "<unknown>";
  if (Array.isArray(value)) return value.map((v, i) => plainInputs(v, secrets, [...path, String(i)]));
  if (value === null || typeof value !== "object") return value;
  const obj = value as Record<string, unknown>;
  const strip = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== SIG_KEY && k !== "__pulumiAsset" && k !== "__pulumiArchive"));
  switch (obj[SIG_KEY]) {
    case SIG.secret:
      secrets.push(path.join("."));
      return plainInputs(obj.value, [], path);
    case SIG.outputValue:
      if (obj.secret) secrets.push(path.join("."));
      return "value" in obj ? plainInputs(obj.value, [], path) : "<unknown>";
    case SIG.asset:
      return { __asset: strip(obj) };
    case SIG.archive: {
      const rest = strip(obj);
      if (rest.assets && typeof rest.assets === "object") {
        rest.assets = Object.fromEntries(Object.entries(rest.assets as Record<string, unknown>).map(([k, v]) => [k, plainInputs(v, secrets, [...path, "assets", k])]));
      }
      return { __archive: rest };
    }
    case SIG.resourceReference:
      return obj.urn;
    default:
      return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, plainInputs(v, secrets, [...path, k])]));
  }
}

export interface MockAccount {
  partition: string;
  region: string;
  account: string;
  dnsSuffix: string;
  /** "s3://bucket/key" objects the account holds, for aws.s3.getObjects; omitted: any object looked up exists. */
  s3Objects?: string[];
  existingBuckets?: Record<string, ExistingBucket>;
}

/** What reading an existing bucket's setting returns, or why S3 refuses (the provider's read fails the same way). */
function readExisting(type: string, id: string, buckets: Record<string, ExistingBucket>, partition: string): Record<string, unknown> | undefined {
  const b = buckets[id];
  if (b === undefined) throw new Error(`reading ${type} ${id}: NoSuchBucket: The specified bucket does not exist`);
  const absent = (what: string) => {
    throw new Error(`reading ${type} ${id}: ${what}`);
  };
  switch (type) {
    case "aws:s3/bucket:Bucket":
      return { bucket: id, arn: `arn:${partition}:s3:::${id}` };
    case "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":
      return b.publicAccessBlock ? { bucket: id, ...b.publicAccessBlock } : absent("NoSuchPublicAccessBlockConfiguration");
    case "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
      return b.serverSideEncryption ? { bucket: id, ...b.serverSideEncryption } : absent("ServerSideEncryptionConfigurationNotFoundError");
    case "aws:s3/bucketVersioning:BucketVersioning":
      return { bucket: id, versioningConfiguration: { status: "Disabled" }, ...b.versioning };
    case "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration":
      return b.lifecycle ? { bucket: id, ...b.lifecycle } : absent("NoSuchLifecycleConfiguration");
    case "aws:s3/bucketPolicy:BucketPolicy":
      return b.policy ? { bucket: id, policy: b.policy } : absent("NoSuchBucketPolicy");
    default:
      return undefined;
  }
}

/**
 * Invoke answers for the four data sources the program reads (any other token
 * throws), and resource states with provider-computed names, ARNs and URLs.
 */
export function createMocks({ partition, region, account, dnsSuffix, s3Objects, existingBuckets = {} }: MockAccount): pulumi.runtime.Mocks {
  const regional = (service: string, resource: string) => `arn:${partition}:${service}:${region}:${account}:${resource}`;
  return {
    call(args) {
      switch (args.token) {
        case "aws:index/getPartition:getPartition":
          return { id: partition, partition, dnsSuffix, reverseDnsPrefix: dnsSuffix.split(".").reverse().join(".") };
        case "aws:index/getRegion:getRegion":
          return { id: region, name: region, region, endpoint: `ec2.${region}.${dnsSuffix}`, description: region };
        case "aws:index/getCallerIdentity:getCallerIdentity":
          return { id: account, accountId: account, arn: `arn:${partition}:iam::${account}:user/deployer`, userId: "AIDAMOCKDEPLOYER" };
        case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
          return {
            id: region, registryId: args.inputs.registryId, userName: "AWS", password: "mock-ecr-password",
            authorizationToken: Buffer.from("AWS:mock-ecr-password").toString("base64"),
            proxyEndpoint: `https://${account}.dkr.ecr.${region}.${dnsSuffix}`, expiresAt: "2099-01-01T00:00:00Z", region,
          };
        case "aws:s3/getObjects:getObjects": {
          // ListObjectsV2 semantics: keys with the prefix, in UTF-8 binary order, at most maxKeys (default 1000).
          const { bucket, prefix = "", maxKeys = 1000 } = args.inputs as { bucket: string; prefix?: string; maxKeys?: number };
          const held = s3Objects ?? [`s3://${bucket}/${prefix}`];
          const keys = held.filter((uri) => uri.startsWith(`s3://${bucket}/${prefix}`)).map((uri) => uri.slice(`s3://${bucket}/`.length)).sort().slice(0, maxKeys);
          return { id: bucket, bucket, prefix, keys, commonPrefixes: [], owners: [], requestCharged: "" };
        }
        case "aws:s3/getBucketNotification:getBucketNotification": {
          const b = existingBuckets[String(args.inputs.bucket)];
          if (b === undefined) throw new Error(`getBucketNotification ${args.inputs.bucket}: NoSuchBucket`);
          return { id: args.inputs.bucket, bucket: args.inputs.bucket, eventbridge: false, lambdaFunctions: [], queues: [], topics: [], region, ...b.notification };
        }
        default:
          throw new Error(`mock-program: no mock for invoke ${args.token}; add one to tools/mock-program-mocks.ts if the program really needs it`);
      }
    },
    newResource(args) {
      if (args.id !== undefined && args.id !== "") {
        const state = readExisting(args.type, args.id, existingBuckets, partition);
        if (state === undefined) throw new Error(`mock-program: no mock for reading ${args.type} ${args.id}`);
        return { id: args.id, state };
      }
      const i = args.inputs as Record<string, any>;
      const named = (key = "name") => (i[key] as string | undefined) ?? autoname(args.name);
      switch (args.type) {
        case "aws:s3/bucket:Bucket": {
          // The provider appends 26 characters (a timestamp and counter) to bucketPrefix.
          const bucket = (i.bucket as string | undefined) ?? (typeof i.bucketPrefix === "string" ? `${i.bucketPrefix}${createHash("sha256").update(args.name).digest("hex").slice(0, 26)}` : autoname(args.name));
          return { id: bucket, state: { ...i, bucket, arn: `arn:${partition}:s3:::${bucket}` } };
        }
        case "aws:ecr/repository:Repository": {
          const name = named();
          return { id: name, state: { ...i, name, registryId: account, arn: regional("ecr", `repository/${name}`), repositoryUrl: `${account}.dkr.ecr.${region}.${dnsSuffix}/${name}` } };
        }
        case "docker:index/image:Image": {
          const imageName = String(i.imageName);
          const repo = imageName.replace(/:[^:/]+$/, "");
          const digest = createHash("sha256").update(imageName).digest("hex");
          return { id: `${repo}@sha256:${digest}`, state: { ...i, repoDigest: `${repo}@sha256:${digest}`, baseImageName: imageName, registryServer: repo.split("/")[0] } };
        }
        case "aws:iam/role:Role": {
          const name = named();
          return { id: name, state: { ...i, name, arn: `arn:${partition}:iam::${account}:role/${name}`, uniqueId: `AROA${name.toUpperCase().replace(/[^A-Z0-9]/g, "").slice(0, 16)}` } };
        }
        case "aws:sagemaker/model:Model": {
          const name = named();
          return { id: name, state: { ...i, name, arn: regional("sagemaker", `model/${name.toLowerCase()}`) } };
        }
        case "aws:cloudwatch/logGroup:LogGroup": {
          const name = named();
          return { id: name, state: { ...i, name, arn: regional("logs", `log-group:${name}`) } };
        }
        case "aws:sqs/queue:Queue": {
          const name = named();
          return { id: `https://sqs.${region}.${dnsSuffix}/${account}/${name}`, state: { ...i, name, arn: regional("sqs", name), url: `https://sqs.${region}.${dnsSuffix}/${account}/${name}` } };
        }
        case "aws:lambda/function:Function": {
          const name = named();
          const arn = regional("lambda", `function:${name}`);
          return { id: name, state: { ...i, name, arn, qualifiedArn: `${arn}:$LATEST`, invokeArn: `arn:${partition}:apigateway:${region}:lambda:path/2015-03-31/functions/${arn}/invocations` } };
        }
        case "aws:kms/key:Key": {
          const keyId = createHash("sha256").update(args.name).digest("hex").replace(/^(.{8})(.{4})(.{4})(.{4})(.{12}).*$/, "$1-$2-$3-$4-$5");
          return { id: keyId, state: { ...i, keyId, arn: regional("kms", `key/${keyId}`) } };
        }
        case "aws:sns/topic:Topic": {
          const name = named();
          return { id: regional("sns", name), state: { ...i, name, arn: regional("sns", name) } };
        }
        case "aws:cloudwatch/eventRule:EventRule": {
          const name = named();
          return { id: name, state: { ...i, name, arn: regional("events", `rule/${name}`) } };
        }
        case "aws:cloudwatch/metricAlarm:MetricAlarm": {
          const name = named();
          return { id: name, state: { ...i, name, arn: regional("cloudwatch", `alarm:${name}`) } };
        }
        case "aws:sagemaker/endpointConfiguration:EndpointConfiguration": {
          const name = named();
          return { id: name, state: { ...i, name, arn: regional("sagemaker", `endpoint-config/${name.toLowerCase()}`) } };
        }
        case "aws:sagemaker/endpoint:Endpoint": {
          const name = named();
          return { id: name, state: { ...i, name, arn: regional("sagemaker", `endpoint/${name.toLowerCase()}`) } };
        }
        case "aws:appautoscaling/policy:Policy": {
          const name = named();
          return { id: name, state: { ...i, name, arn: regional("autoscaling", `scalingPolicy:00000000-0000-0000-0000-000000000000:resource/sagemaker/${i.resourceId}:policyName/${name}`) } };
        }
        default:
          return { id: `${args.name}-id`, state: i };
      }
    },
  };
}
