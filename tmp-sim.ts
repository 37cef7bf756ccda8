import { simulateRunQueue } from "./tools/run-queue-sim";
(async () => {
  const t0 = performance.now();
  const N = Number(process.argv[2] ?? 20);
  const r = await simulateRunQueue({ quota: 2, jobMs: 15 * 60e3, arrivals: Array.from({ length: N }, (_, i) => ({ at: Math.floor(i * 60e3 / N), runId: `r${String(i).padStart(4, "0")}`, lane: "operational" as const, deliveries: i % 10 === 0 ? 2 : 1 })) });
  const ideal = Math.ceil(N / 2) * 15 * 60e3;
  console.log({ ran: r.ran, dlq: r.deadLetters, dup: r.duplicateJobs, max: r.maxInProgress, rle: r.resourceLimitAnswers, ratio: r.makespanMs / ideal, inv: r.invocations, wall: performance.now() - t0, writes: r.requestWrites });
})();
