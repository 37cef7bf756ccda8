/**
 * A yes/no question on the terminal before something that costs money
 * (`npm run campaign`). `--yes` answers it; without a terminal (CI, a pipe)
 * and without `--yes`, the answer is no: nothing is started unasked.
 */
import { createInterface } from "node:readline/promises";
import type { Readable, Writable } from "node:stream";

export interface ConfirmOptions {
  /** `--yes`: go on without asking. */
  yes: boolean;
  input?: Readable & { isTTY?: boolean };
  output?: Writable;
}

export async function confirm(question: string, opts: ConfirmOptions): Promise<boolean> {
  const output = opts.output ?? process.stdout;
  if (opts.yes) return true;
  const input = opts.input ?? process.stdin;
  if (!input.isTTY) {
    output.write(`${question} [y/N] no answer possible (no terminal); pass --yes to go on\n`);
    return false;
  }
  const rl = createInterface({ input, output });
  try {
    const answer = (await rl.question(`${question} [y/N] `)).trim().toLowerCase();
    return answer === "y" || answer === "yes";
  } finally {
    rl.close();
  }
}
