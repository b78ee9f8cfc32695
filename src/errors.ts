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
