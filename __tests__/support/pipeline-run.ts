import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ROOT, SUITE_FLAGS } from './cli-run.js';
import { filesContaining, newScratchDirs, processesMentioning, scratchDirs } from './leftovers.js';

/** The root password of the end-to-end runs: it must appear in no log and no report. */
export const PIPELINE_PASSWORD = 'Pipeline-Test-Secret-7f3a';

/**
 * One whole run of the bundled CLI, as users and the README run it, with the checks every end-to-end run
 * gets: nothing left running or behind, no work files in the output, the password nowhere.
 *
 * spawnSync blocks the event loop, so vitest's own test timeout cannot fire during it: each run gets a
 * deadline, SIGTERM (the CLI then releases its VMs and mounts, which the checks below verify).
 */
export function runPipeline(
  work: string,
  args: string[],
  timeoutMinutes: number,
): { status: number; out: string; result: Record<string, unknown>; dir: string } {
  const dir = join(work, `out-${Math.random().toString(36).slice(2, 8)}`);
  const before = scratchDirs();
  const r = spawnSync(
    process.execPath,
    [join(ROOT, 'dist/cli/index.js'), 'run', '--output-dir', dir, '--password', PIPELINE_PASSWORD, ...SUITE_FLAGS, ...args],
    {
      cwd: ROOT,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      timeout: timeoutMinutes * 60_000,
      killSignal: 'SIGTERM',
    },
  );
  const out = `${r.stdout}${r.stderr}`;
  expect(r.error, `the CLI did not finish within ${timeoutMinutes} min:\n${out.slice(-3000)}`).toBeUndefined();
  // Nothing left behind, whatever the verdict.
  expect(processesMentioning(dir)).toEqual([]);
  expect(newScratchDirs(before)).toEqual([]);
  expect(existsSync(join(dir, '.work')), 'the working files under the output dir').toBe(false);
  // The root password never appears in the log or in any report.
  expect(out).not.toContain(PIPELINE_PASSWORD);
  expect(filesContaining(dir, PIPELINE_PASSWORD)).toEqual([]);
  const result = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as Record<string, unknown>;
  return { status: r.status ?? -1, out, result, dir };
}
