import * as fs from "node:fs";
import * as path from "node:path";

/**
 * Whether an AWS resource type accepts `tags`. @pulumi/aws exports no such
 * metadata, so this reads the generated resource module the type token names
 * (aws:<module>/<file>:<Class> → @pulumi/aws/<module>/<file>.js) and looks for
 * the `tags` input it copies from its args. Cached per type.
 * Returns undefined for types that are not @pulumi/aws resources.
 */
const cache = new Map<string, boolean | undefined>();
let awsRoot: string | undefined;

export function isTaggableAwsType(type: string): boolean | undefined {
  if (cache.has(type)) return cache.get(type);
  const m = /^aws:([a-zA-Z0-9]+)\/([a-zA-Z0-9]+):[A-Za-z0-9]+$/.exec(type);
  let result: boolean | undefined;
  if (m) {
    awsRoot ??= path.dirname(require.resolve("@pulumi/aws/package.json"));
    const file = path.join(awsRoot, m[1], `${m[2]}.js`);
    result = fs.existsSync(file) ? /resourceInputs\["tags"\] = args\?\.tags;/.test(fs.readFileSync(file, "utf8")) : undefined;
  }
  cache.set(type, result);
  return result;
}
