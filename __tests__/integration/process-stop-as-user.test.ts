import { describe, expect, it } from 'vitest';
import { cloneCheckout, ensureRunnerUser, runAs } from '../support/runner-user.js';

// __tests__/process-stop.test.ts as GitHub's runners would run it: a non-root user with passwordless
// sudo. Measured before the fix: a timeout's SIGKILL to sudo's process group killed sudo and left the
// command running as root.
describe('processes started through sudo, as a non-root user', () => {
  it('are stopped by a timeout, a cancel, stop() and the post step', async () => {
    const user = ensureRunnerUser();
    const clone = cloneCheckout(user, { nodeModules: 'hardlink' });
    const run = await runAs(
      user,
      [
        'node',
        'node_modules/vitest/vitest.mjs',
        'run',
        '--reporter=verbose',
        '--configLoader',
        'runner',
        '--project',
        'unit',
        '__tests__/process-stop.test.ts',
      ],
      {
        cwd: clone,
        timeoutSeconds: 300,
      },
    );
    expect(run.status, run.out.slice(-4000)).toBe(0);
    expect(run.out).toMatch(/running as a non-root user/);
    // Every test of the file ran (none skipped as root-only): the four ways to stop, and the EPIPE case.
    expect(run.out.replace(/\x1b\[[0-9;]*m/g, '')).toMatch(/Tests +5 passed \(5\)/); // eslint-disable-line no-control-regex
  }, 600_000);
});
