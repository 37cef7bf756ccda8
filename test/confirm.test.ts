import { strict as assert } from "node:assert";
import { PassThrough } from "node:stream";
import { confirm } from "../tools/confirm";

function terminal(answer: string | undefined) {
  const input = Object.assign(new PassThrough(), { isTTY: true });
  const output = new PassThrough();
  let written = "";
  output.on("data", (c) => (written += String(c)));
  if (answer !== undefined) setImmediate(() => input.write(`${answer}\n`));
  return { input, output, written: () => written };
}

describe("confirm (the campaign's question before it enqueues)", () => {
  it("goes on with --yes without asking", async () => {
    const t = terminal(undefined);
    assert.equal(await confirm("Enqueue 360 runs?", { yes: true, input: t.input, output: t.output }), true);
    assert.equal(t.written(), "");
  });

  it("asks on a terminal and takes only y or yes", async () => {
    for (const [answer, expected] of [["y", true], ["YES", true], ["", false], ["n", false], ["maybe", false]] as const) {
      const t = terminal(answer);
      assert.equal(await confirm("Enqueue 360 runs?", { yes: false, input: t.input, output: t.output }), expected, JSON.stringify(answer));
      assert.match(t.written(), /^Enqueue 360 runs\? \[y\/N\] /);
    }
  });

  it("says no without a terminal and tells how to go on", async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    let written = "";
    output.on("data", (c) => (written += String(c)));
    assert.equal(await confirm("Enqueue 360 runs?", { yes: false, input, output }), false);
    assert.match(written, /no terminal\); pass --yes to go on/);
  });
});
