// The one error the CLI shows as it is: a message for the operator, one line,
// and the exit code it ends with. Anything else is turned into one in main.ts.

export const EXIT_FAILURE = 1;
/** Bad arguments, as most command-line tools do. */
const EXIT_USAGE = 2;

export class CliError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode: number = EXIT_FAILURE) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

export function usageError(message: string): CliError {
  return new CliError(`${message} (see tally --help)`, EXIT_USAGE);
}
