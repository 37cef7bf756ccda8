// The run manifest `<outputPrefix><runId>/_SUCCESS` (version 1), written last by the runtime.
import type { Compression } from "./request";

export interface StepRecord {
  step: number;
  lead: number;
  stage: string;
  file: string;
  bytes: number;
  /** SHA-256 (hex) of the file, hashed before its upload; also its `x-amz-meta-fuxi-sha256`. */
  sha256: string;
  /** True when the file was written by an earlier, interrupted invocation. */
  resumed: boolean;
  runMs?: number;
  loadMs?: number;
  encodeMs?: number;
  uploadMs?: number;
}

export interface Manifest {
  version: 1;
  runId: string;
  jobName: string;
  fingerprint: string;
  input: string;
  inputETag: string;
  initTime: string;
  outputPrefix: string;
  cascadeSteps: number[];
  outputFormat: "netcdf4";
  compression: Compression;
  steps: number;
  resumedFromStep: number;
  grid: { lat: number; lon: number };
  providers: string[];
  models: Array<{ file: string; bytes: number; sha256: string }>;
  files: StepRecord[];
  startedAt: string;
  finishedAt: string;
  wallMs: number;
  /** Wall time from the first computed step to the last upload (excludes input decode and resume). */
  stepLoopMs: number;
  /** Instance, the visible part of the billed time, steps and bytes (runtime/src/usage.ts). */
  usage: RunUsage;
}

// The manifest's `usage` part (runtime/src/usage.ts computes it; docs/contract.md, "Run manifest: usage").
/** The instance the stack's jobs run on, from the model's environment (a container cannot ask SageMaker). */
export interface InstanceSettings {
  instanceType: string | null;
  instanceCount: number | null;
}

export interface RunUsage extends InstanceSettings {
  /** When this container's process started (after provisioning, image pull and model download). */
  containerStartedAt: string;
  /** When the models were loaded and /ping turned healthy. */
  modelsReadyAt: string | null;
  /** When this invocation arrived, and when its manifest was written (the last thing it does). */
  invocationStartedAt: string;
  invocationEndedAt: string;
  /** invocationEndedAt - containerStartedAt: the part of the billed time the runtime saw. */
  visibleSeconds: number;
  /** Steps this invocation computed, and steps kept from an interrupted earlier invocation. */
  stepsComputed: number;
  stepsResumed: number;
  /** Step-file bytes this invocation uploaded, and of every step file of the run. */
  bytesWritten: number;
  bytesStored: number;
}
