// Faults that map to HTTP 400: the caller sent something we cannot run.

/** A fault in an input object (the FuXi input file or a step file being resumed from). */
export class InputFault extends Error {
  constructor(readonly file: string, readonly fault: string) {
    super(`${file}: ${fault}`);
    this.name = "InputFault";
  }
}

/** Another invocation is running: HTTP 429. */
export class BusyError extends Error {
  constructor(readonly runningJob: string) {
    super(`a forecast is already running (job ${runningJob}); this container runs one invocation at a time (MaxConcurrentTransforms 1)`);
    this.name = "BusyError";
  }
}
