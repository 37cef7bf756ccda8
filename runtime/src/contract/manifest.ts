// The run manifest `<outputPrefix><runId>/_SUCCESS` (version 1), written last by the runtime.

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
  compression: "none" | "gzip";
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
}
