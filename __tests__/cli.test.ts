import { describe, expect, it } from 'vitest';
import { actionMetadata } from '../src/action-metadata.js';
import { cliMain } from '../src/entry.js';
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
