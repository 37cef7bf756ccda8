/** A FuXi input file that cannot be used; `fault` says what is wrong, `file` which file (S3 key or path). */
export class InputFileError extends Error {
  readonly file: string;
  readonly fault: string;

  constructor(file: string, fault: string) {
    super(`${file}: ${fault}`);
    this.name = "InputFileError";
    this.file = file;
    this.fault = fault;
  }
}
