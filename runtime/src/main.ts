// Container entry point: `node dist/main.js serve` (or `tsx runtime/src/main.ts serve`).
import pino from "pino";
import { ConfigError, readConfig } from "./config";
import { startServer } from "./server";

const USAGE = "usage: main serve   (starts the SageMaker inference server on SAGEMAKER_BIND_TO_PORT, default 8080)";

async function serve(): Promise<void> {
  let config;
  try {
    config = readConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`fuxi-runtime: configuration error: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const log = pino({ level: config.logLevel, base: { service: "fuxi-runtime" }, timestamp: pino.stdTimeFunctions.isoTime });
  const server = await startServer(config, log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    server.shutdown().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

const [command, ...rest] = process.argv.slice(2);
if (command !== "serve" || rest.length > 0) {
  process.stderr.write(`fuxi-runtime: unknown arguments ${JSON.stringify(process.argv.slice(2))}\n${USAGE}\n`);
  process.exit(64); // EX_USAGE
}
serve().catch((error: unknown) => {
  process.stderr.write(`fuxi-runtime: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
