import type { ParseContext } from '../../src/config.js';

/**
 * The host facts parseConfig takes, as tests give them: an amd64 host with two cores and a Debian mirror
 * of its own (a name that resolves nowhere); `cwd` and the default output directory are the test's.
 */
export function parseContext(cwd: string, overrides: Partial<ParseContext> = {}): ParseContext {
  return {
    cwd,
    defaultOutputDir: `${cwd}/out`,
    hostMirror: 'http://mirror.example/debian',
    hostArchitecture: 'amd64',
    cpus: 2,
    randomPassword: () => 'generated-password',
    ...overrides,
  };
}
