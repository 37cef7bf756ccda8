/**
 * Preview-time check of `fuxi:model.artifacts`: a prefix must hold fuxi-models.json (written by
 * `npm run models -- upload` after it verified and uploaded the six files), an archive must exist.
 * A stack pointed at missing or unchecked weights would otherwise fail only when a GPU job starts.
 */
import * as aws from "@pulumi/aws";
import type { ModelArtifacts } from "../config";
import { MODELS_MANIFEST } from "../runtime/src/model-check";

export async function checkModelArtifacts(model: ModelArtifacts): Promise<void> {
  const key = model.kind === "prefix" ? model.key + MODELS_MANIFEST : model.key;
  const uri = `s3://${model.bucket}/${key}`;
  let keys: string[];
  try {
    // The exact key sorts first among the keys it prefixes.
    keys = (await aws.s3.getObjects({ bucket: model.bucket, prefix: key, maxKeys: 1 })).keys;
  } catch (error) {
    throw new Error(`fuxi:model.artifacts: cannot list ${uri} to check it exists (${(error as Error).message}); the deploying identity needs s3:ListBucket on ${model.bucket}`);
  }
  if (keys[0] === key) return;
  const folder = "<folder with the six FuXi files>";
  if (model.kind === "prefix") {
    throw new Error(
      `fuxi:model.artifacts: ${model.uri} has no ${MODELS_MANIFEST}, so its model files were not uploaded and checked with this project's tool. ` +
        `Verify and upload them with:\n  npm run models -- upload ${folder} ${model.uri}`,
    );
  }
  const slash = model.key.lastIndexOf("/");
  throw new Error(
    `fuxi:model.artifacts: ${model.uri} does not exist. Verify and upload the six files as that archive with:\n` +
      `  npm run models -- upload ${folder} s3://${model.bucket}/${model.key.slice(0, slash + 1)} --archive ${model.key.slice(slash + 1)}`,
  );
}
