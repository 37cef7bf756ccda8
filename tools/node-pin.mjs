// Runs after `npm ci`/`npm install`: says which Node the npm scripts run. The project pins Node in .nvmrc;
// the npm registry's node-<platform>-<arch> package puts that build in node_modules/.bin, which npm puts
// first on PATH for scripts, so `npm start` and `npm test` run the pinned Node where the system Node is older.
import { readFileSync } from "node:fs";

const pinned = `v${readFileSync(new URL("../.nvmrc", import.meta.url), "utf8").trim()}`;
const npmNode = /\bnode\/(v[\d.]+)/.exec(process.env.npm_config_user_agent ?? "")?.[1];
if (process.version !== pinned) {
  console.warn(
    `warning: npm scripts will run Node ${process.version}, not the pinned ${pinned} (.nvmrc): the npm registry has no ` +
      `node-${process.platform}-${process.arch}@${pinned.slice(1)}; install that Node (e.g. \`nvm install\` here) and run npm with it.`,
  );
} else if (npmNode !== undefined && npmNode !== pinned) {
  console.log(`npm ran on Node ${npmNode} (hence any EBADENGINE warning above); npm scripts run the pinned Node ${pinned} from node_modules/.bin.`);
}
