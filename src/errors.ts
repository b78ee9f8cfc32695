/** Why a run failed: `test` means the system under test is at fault (exit 1), `infrastructure` means we could not test it (exit 3). */
export type FailureKind = 'test' | 'infrastructure';

/** The error type stages raise; only entry points turn it into setFailed and an exit status. */
export class StageError extends Error {
  constructor(
    readonly stage: string,
    message: string,
    readonly kind: FailureKind = 'infrastructure',
    /** Extra lines that explain the failure (console tail, build log tail). */
    readonly details: readonly string[] = [],
    /** What the stage produced before it failed (reports still get published). */
    readonly partial?: unknown,
  ) {
    super(message);
    this.name = 'StageError';
  }
}

export const EXIT = { passed: 0, test: 1, input: 2, infrastructure: 3 } as const;

/** A bad input, named with its value and what is allowed; raised before any work starts (exit 2). */
export class InputError extends Error {
  constructor(
    readonly input: string,
    readonly value: string,
    readonly allowed: string,
  ) {
    // A long value is shown by its start: the message names the input, it need not repeat a megabyte.
    const shown =
      value.length > 200 ? `${JSON.stringify(value.slice(0, 200))}… (${value.length} characters)` : JSON.stringify(value);
    super(`Invalid input '${input}': ${shown}. Allowed: ${allowed}.`);
    this.name = 'InputError';
  }
}
