import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StageContext } from '../src/context.js';
import { StageError } from '../src/errors.js';
import type { Exec, ExecOptions } from '../src/host/exec.js';
import { packageStage } from '../src/stages/package.js';
import type { ResourceTracker } from '../src/state.js';
import { stageRun } from './support/stage-run.js';

const hello = join(import.meta.dirname, '..', 'examples', 'hello');
let scratch: string;
afterEach(() => rmSync(scratch, { recursive: true, force: true }));

/** Stands in for mmdebstrap: makes the environment tarball, then "builds" by replaying output lines. */
function fakeExec(buildLines: string[], buildExit: number, seen: (readonly string[])[]): Exec {
  return {
    async run(argv: readonly string[], opts: ExecOptions) {
      seen.push(argv);
      if (argv.includes('--variant=buildd')) writeFileSync(argv.at(-2)!, 'tar');
      else for (const line of buildLines) opts.onLine?.(line);
      return { exitCode: argv.includes('--variant=custom') ? buildExit : 0, stdout: '', stderr: '' };
    },
    start() {
      throw new Error('not used');
    },
  };
}

function context(workingDirectory: string, exec: Exec): { ctx: StageContext; resources: ResourceTracker } {
  scratch = mkdtempSync(join(tmpdir(), 'dvc-package-stage-'));
  const { ctx, resources } = stageRun({
    scratch,
    name: 'out',
    logName: 'package',
    flags: ['--working-directory', workingDirectory, '--build-release', 'trixie'],
    cwd: scratch,
    hostMirror: 'http://mirror.example/debian',
    cacheDir: join(scratch, 'cache'),
    exec: () => exec,
  });
  return { ctx, resources };
}

describe('package stage with a stand-in mmdebstrap', () => {
  it('reports a failed build as a test failure with the build log tail, and leaves nothing behind', async () => {
    const seen: (readonly string[])[] = [];
    const lines = [
      ...Array.from({ length: 40 }, (_, i) => `make line ${i}`),
      'debian-vm-ci: FAILED: dpkg-buildpackage exited with status 2',
    ];
    const { ctx, resources } = context(hello, fakeExec(lines, 1, seen));
    const error = await packageStage.run(ctx).catch((e: unknown) => e);
    await ctx.log.close();
    expect(error).toBeInstanceOf(StageError);
    expect((error as StageError).kind).toBe('test');
    expect((error as StageError).message).toBe('hello-dvc 1.0.0 failed to build: dpkg-buildpackage exited with status 2');
    expect((error as StageError).details).toHaveLength(30);
    // Not root: the stage first asks mmdebstrap whether user namespaces work (--unshare-helper); as root it does not.
    const builds = seen.filter((a) => !a.includes('--unshare-helper'));
    expect(builds.map((a) => a[2])).toEqual(['--variant=buildd', '--variant=custom']);
    expect(resources.list()).toEqual([]);
    // The environment tarball was kept under its key for the next run.
    expect(readdirSync(join(scratch, 'cache', 'build-env'))).toEqual([
      expect.stringMatching(/^trixie-amd64-\d{4}w\d{2}-[0-9a-f]{10}\.tar$/),
    ]);
  });

  it('calls an mmdebstrap failure before the build an infrastructure failure', async () => {
    const { ctx } = context(hello, fakeExec(['E: cannot reach the mirror'], 25, []));
    const error = (await packageStage.run(ctx).catch((e: unknown) => e)) as StageError;
    await ctx.log.close();
    expect(error.kind).toBe('infrastructure');
    expect(error.details).toEqual(['E: cannot reach the mirror']);
  });

  it('refuses a working directory without debian/ before doing any work', async () => {
    const seen: (readonly string[])[] = [];
    const { ctx } = context(tmpdir(), fakeExec([], 0, seen));
    await expect(packageStage.run(ctx)).rejects.toThrow(/no debian\/control and debian\/changelog/);
    await ctx.log.close();
    expect(seen).toEqual([]);
  });
});
