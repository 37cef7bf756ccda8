// The manifest's `usage` part: what a run used, as far as the container can see it (docs/contract.md,
// "Run manifest: usage"). Batch Transform bills the instance from TransformStartTime to
// TransformEndTime; the container exists only for part of that window.

import type { InstanceSettings, RunUsage } from "./contract";

export type { InstanceSettings, RunUsage };

/** When the current process started (Node's own clock of its uptime). */
export function processStartedAt(now = Date.now(), uptimeSeconds = process.uptime()): Date {
  return new Date(now - uptimeSeconds * 1000);
}

export function runUsage(opts: {
  instance: InstanceSettings;
  containerStartedAt: Date;
  modelsReadyAt: Date | undefined;
  invocationStartedAt: Date;
  invocationEndedAt: Date;
  files: readonly { bytes: number; resumed: boolean }[];
}): RunUsage {
  const computed = opts.files.filter((f) => !f.resumed);
  return {
    instanceType: opts.instance.instanceType,
    instanceCount: opts.instance.instanceCount,
    containerStartedAt: opts.containerStartedAt.toISOString(),
    modelsReadyAt: opts.modelsReadyAt?.toISOString() ?? null,
    invocationStartedAt: opts.invocationStartedAt.toISOString(),
    invocationEndedAt: opts.invocationEndedAt.toISOString(),
    visibleSeconds: Math.max(0, (opts.invocationEndedAt.getTime() - opts.containerStartedAt.getTime()) / 1000),
    stepsComputed: computed.length,
    stepsResumed: opts.files.length - computed.length,
    bytesWritten: computed.reduce((a, f) => a + f.bytes, 0),
    bytesStored: opts.files.reduce((a, f) => a + f.bytes, 0),
  };
}
