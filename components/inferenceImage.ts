import * as aws from "@pulumi/aws";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { Tags } from "./context";

export interface InferenceImageArgs {
  repositoryName: string;
  /** Absolute path of the Docker build context. */
  context: string;
  /** Dockerfile path relative to the context. */
  dockerfile: string;
  platform: string;
  /** Build arg BASE_IMAGE. */
  baseImage: string;
  /** ECR lifecycle keeps this many images. */
  keepImages: number;
  /** Delete the repository on destroy even if it holds images. */
  forceDelete: boolean;
  tags: Tags;
}

/** Folders that never reach the image (the Dockerfile installs dependencies itself). */
const NOT_IN_CONTEXT = new Set(["node_modules", "dist", ".git"]);

/**
 * Content tag for the build: a hash over every file in the context (paths and
 * bytes) and the build settings. The repository's tags are immutable, so the same
 * tag must always mean the same image; a changed source gives a new tag.
 */
export function contextTag(context: string, settings: Record<string, string>): string {
  const hash = createHash("sha256");
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (NOT_IN_CONTEXT.has(entry.name)) continue;
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) hash.update(`${relative(context, full)}\0`).update(readFileSync(full)).update("\0");
    }
  };
  walk(context);
  hash.update(JSON.stringify(Object.entries(settings).sort()));
  return `src-${hash.digest("hex").slice(0, 16)}`;
}

/**
 * ECR repository plus the runtime image, built and pushed with @pulumi/docker.
 * Everything downstream uses `imageUri` = `repository@sha256:<digest>`, never a tag.
 *
 * SageMaker rejects OCI manifests. docker.Image builds with the Docker engine's
 * BuildKit into the engine's image store and pushes from there; the classic store
 * pushes Docker v2 schema 2 manifests, the containerd image store may push OCI
 * ones (docs/deploy.md says how to check and what to switch off).
 */
export class InferenceImage extends pulumi.ComponentResource {
  readonly repositoryUrl: pulumi.Output<string>;
  readonly repositoryArn: pulumi.Output<string>;
  readonly imageUri: pulumi.Output<string>;

  constructor(name: string, args: InferenceImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fuxi:image:InferenceImage", name, {}, opts);
    const child = { parent: this };
    const repo = new aws.ecr.Repository(`${name}-repo`, {
      name: args.repositoryName,
      imageTagMutability: "IMMUTABLE",
      imageScanningConfiguration: { scanOnPush: true },
      encryptionConfigurations: [{ encryptionType: "AES256" }],
      forceDelete: args.forceDelete,
      tags: args.tags,
    }, child);
    new aws.ecr.LifecyclePolicy(`${name}-lifecycle`, {
      repository: repo.name,
      policy: JSON.stringify({
        rules: [{
          rulePriority: 1,
          description: `keep the last ${args.keepImages} images`,
          selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: args.keepImages },
          action: { type: "expire" },
        }],
      }),
    }, child);

    const auth = aws.ecr.getAuthorizationTokenOutput({ registryId: repo.registryId }, child);
    const tag = contextTag(args.context, { dockerfile: args.dockerfile, platform: args.platform, baseImage: args.baseImage });
    const image = new docker.Image(`${name}-image`, {
      imageName: pulumi.interpolate`${repo.repositoryUrl}:${tag}`,
      build: {
        context: args.context,
        dockerfile: join(args.context, args.dockerfile),
        platform: args.platform,
        builderVersion: docker.BuilderVersion.BuilderBuildKit,
        args: { BASE_IMAGE: args.baseImage },
      },
      registry: {
        server: repo.repositoryUrl,
        username: auth.userName,
        password: pulumi.secret(auth.password),
      },
    }, child);

    this.repositoryUrl = repo.repositoryUrl;
    this.repositoryArn = repo.arn;
    this.imageUri = image.repoDigest;
    this.registerOutputs({ repositoryUrl: this.repositoryUrl, repositoryArn: this.repositoryArn, imageUri: this.imageUri });
  }
}
