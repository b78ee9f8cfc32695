import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spaceShortfalls } from '../../src/host/scratch.js';

const root = resolve(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'dvc-free-space-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the free-space check before the install stage', () => {
  it('adds up what lands on one file system and names the directory, the bytes needed and available', () => {
    const stat = (dir: string) => ({ dev: dir.startsWith('/big') ? 1 : 2, available: dir.startsWith('/big') ? 10e9 : 3e9 });
    expect(
      spaceShortfalls(
        [
          { dir: '/small/out', bytes: 2e9, what: 'the image' },
          { dir: '/small/tmp', bytes: 2e9, what: 'its root file system' },
          { dir: '/big', bytes: 5e9, what: 'a builder disk' },
        ],
        stat,
      ),
    ).toEqual([{ dir: '/small/out', needed: 4e9, available: 3e9, what: 'the image and its root file system' }]);
  });

  it('fails the run with exit 3 before any work when the image cannot fit (image-size 2T here)', () => {
    const out = join(work, 'out');
    const r = spawnSync(
      process.execPath,
      [
        join(root, 'dist/cli/index.js'),
        'run',
        ...['--working-directory', 'examples/hello', '--installer', 'mmdebstrap', '--lint', 'false'],
        ...['--build-package', 'false', '--accel', 'tcg', '--image-size', '2T', '--output-dir', out],
      ],
      { cwd: root, encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' },
    );
    expect(r.status, r.stdout + r.stderr).toBe(3);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as {
      stages: { name: string; status: string; error?: string; seconds: number }[];
    };
    const install = result.stages.find((s) => s.name === 'install')!;
    expect(install.status).toBe('failed');
    expect(install.error).toMatch(
      new RegExp(
        `^not enough free space in ${out} for the 2T image and its root file system: \\d+ bytes \\(4T\\) needed, \\d+ bytes \\(.+\\) available`,
      ),
    );
    expect(install.seconds).toBeLessThan(5);
  });
});
