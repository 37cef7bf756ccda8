import { HeadObjectCommand, PutObjectCommand, S3Client, paginateListObjectsV2 } from "@aws-sdk/client-s3";
import { isInputFileName } from "../runtime/src/contract";

export interface RunFolderListing {
  /** Keys of the `.nc` objects directly in the folder (case-insensitive suffix), in listing order. */
  ncKeys: string[];
  /** All objects under the folder prefix, nested ones included. */
  objectCount: number;
}

/** Lists the whole folder, following continuation tokens past the 1,000-key pages. */
export async function listRunFolder(s3: S3Client, bucket: string, folderKey: string): Promise<RunFolderListing> {
  const ncKeys: string[] = [];
  let objectCount = 0;
  for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: folderKey })) {
    for (const object of page.Contents ?? []) {
      if (object.Key === undefined) continue;
      objectCount += 1;
      if (isInputFileName(object.Key.slice(folderKey.length))) ncKeys.push(object.Key);
    }
  }
  return { ncKeys, objectCount };
}

export async function objectExists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === "NotFound" || e.name === "NoSuchKey" || e.$metadata?.httpStatusCode === 404) return false;
    throw error;
  }
}

export async function putJson(s3: S3Client, bucket: string, key: string, value: unknown): Promise<void> {
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: `${JSON.stringify(value, null, 2)}\n`,
      ContentType: "application/json",
    }),
  );
}
