import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { actionMetadata } from '../src/action-metadata.js';
import { cliInputs, cliMain } from '../src/entry.js';
import { childEnvironment } from '../src/host/exec.js';
import { EXIT } from '../src/errors.js';

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await cliMain(args, (l) => lines.push(l));
  return { code, out: lines.join('\n') };
}

describe('the CLI', () => {
  it('--help lists every action input with its default, generated from action.yml', async () => {
    const { code, out } = await cli('run', '--help');
    expect(code).toBe(EXIT.passed);
    for (const input of actionMetadata().inputs) {
      expect(out).toContain(`--${input.name}`);
    }
    expect(out).toContain('default: trixie');
    expect(out).toMatch(/Exit status: 0 passed, 1 test failure, 2 bad input, 3 infrastructure error/);
  });

  it('exits 2 without a command, for an unknown command and for a bad input, before any work', async () => {
    expect((await cli()).code).toBe(EXIT.input);
    expect((await cli('frobnicate')).code).toBe(EXIT.input);
    const bad = await cli('run', '--release', 'trixie; rm -rf /');
    expect(bad.code).toBe(EXIT.input);
    expect(bad.out).toBe(
      `error: Invalid input 'release': "trixie; rm -rf /". Allowed: one of bullseye, bookworm, trixie, forky, sid, oldstable, stable, testing, unstable.`,
    );
  });
});

describe('the password from the environment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dvc-cli-password-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('DEBIAN_VM_CI_PASSWORD, else the first line of DEBIAN_VM_CI_PASSWORD_FILE; --password wins over both', () => {
    writeFileSync(join(dir, 'pw'), 'from-the-file\nsecond line\n');
    const file = join(dir, 'pw');
    expect(cliInputs([], { DEBIAN_VM_CI_PASSWORD: 'from-env' })('password')).toBe('from-env');
    expect(cliInputs([], { DEBIAN_VM_CI_PASSWORD_FILE: file })('password')).toBe('from-the-file');
    expect(cliInputs([], { DEBIAN_VM_CI_PASSWORD: 'from-env', DEBIAN_VM_CI_PASSWORD_FILE: file })('password')).toBe('from-env');
    expect(cliInputs(['--password', 'flag'], { DEBIAN_VM_CI_PASSWORD: 'from-env' })('password')).toBe('flag');
    expect(cliInputs([], {})('password')).toBe('');
    // The variables never reach a tool we start.
    expect(childEnvironment({ PATH: '/bin', DEBIAN_VM_CI_PASSWORD: 'x', DEBIAN_VM_CI_PASSWORD_FILE: file })).toEqual({
      PATH: '/bin',
    });
  });

  it('a file that cannot be read, or has no first line, is a bad password input (exit 2), not a crash', () => {
    expect(() => cliInputs([], { DEBIAN_VM_CI_PASSWORD_FILE: join(dir, 'missing') })).toThrow(
      /Invalid input 'password'.*DEBIAN_VM_CI_PASSWORD_FILE=.*Allowed: a readable file \(ENOENT\)/,
    );
    writeFileSync(join(dir, 'empty'), '\nx\n');
    expect(() => cliInputs([], { DEBIAN_VM_CI_PASSWORD_FILE: join(dir, 'empty') })).toThrow(
      /a file whose first line is the password/,
    );
  });
});
