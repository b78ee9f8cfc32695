import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StageError } from '../../src/errors.js';
import { packageStage } from '../../src/stages/package.js';
import type { PackageResult } from '../../src/results.js';
import { stageRun, type StageRun } from '../support/stage-run.js';

/*
 * Real builds with mmdebstrap against the host's Debian mirror. The build environments are kept in
 * the developer's cache directory (as the CLI does), so only the first run of a week pays for them.
 */

const repo = join(import.meta.dirname, '..', '..');
const hello = join(repo, 'examples', 'hello');
const fixtures = join(repo, '__tests__', 'fixtures', 'package');
const scratch = mkdtempSync(join(tmpdir(), 'dvc-package-it-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function setUp(name: string, flags: string[]): StageRun {
  return stageRun({ scratch, name, logName: 'package', flags, cwd: repo });
}

async function build(run: StageRun): Promise<PackageResult> {
  try {
    return await packageStage.run(run.ctx);
  } finally {
    await run.ctx.log.close();
    // Every temp dir the stage registered is gone and unregistered, whatever the outcome.
    expect(run.resources.list()).toEqual([]);
  }
}

function debField(deb: string, field: string): string {
  return execFileSync('dpkg-deb', ['--field', deb, field], { encoding: 'utf8' }).trim();
}

function debContents(deb: string): string {
  return execFileSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8' });
}

/** Content hash of every file under dir, to prove the build left the user's tree alone. */
function treeDigest(dir: string): string {
  const hash = createHash('sha256');
  const walk = (d: string): void => {
    for (const entry of readdirSync(d).sort()) {
      const p = join(d, entry);
      const st = statSync(p);
      hash.update(`${relative(dir, p)} ${st.mode} ${st.mtimeMs}\n`);
      if (st.isDirectory()) walk(p);
      else hash.update(readFileSync(p));
    }
  };
  walk(dir);
  return hash.digest('hex');
}

describe('package stage (mmdebstrap build environment)', () => {
  it('builds the hello example for bookworm', async () => {
    const run = setUp('hello-bookworm', ['--working-directory', hello, '--build-release', 'bookworm']);
    const result = await build(run);
    expect(result.debs.map((d) => basename(d))).toEqual(['hello-dvc_1.0.0_all.deb']);
    expect(result.debs[0].startsWith(run.ctx.paths.packages)).toBe(true);
    expect(debField(result.debs[0], 'Version')).toBe('1.0.0');
    expect(result.changes).toMatch(/hello-dvc_1\.0\.0_amd64\.changes$/);
    expect(result.buildinfo).toMatch(/\.buildinfo$/);
    expect(result.cache.key).toMatch(/^bookworm-amd64-\d{4}w\d{2}-[0-9a-f]{10}$/);
    expect(result.summary).toContain(`build environment cache ${result.cache.hit ? 'hit' : 'miss'}`);
    expect(run.progress.some((p) => p.startsWith('dpkg-buildpackage: info:'))).toBe(true);
    const log = readFileSync(join(run.ctx.paths.logs, 'package.log'), 'utf8');
    expect(log).toContain('dh_builddeb');
    console.log(`hello/bookworm: ${result.summary}`);
  });

  it('builds hello for trixie with a version suffix and lintian, leaving the source tree untouched', async () => {
    const before = treeDigest(hello);
    const run = setUp('hello-trixie', [
      '--working-directory',
      hello,
      '--build-release',
      'trixie',
      '--package-version-suffix',
      '+autobuild42',
      '--lintian',
      'true',
      '--lintian-fail-on',
      'never',
    ]);
    const result = await build(run);
    expect(result.version).toBe('1.0.0+autobuild42');
    expect(result.debs.map((d) => basename(d))).toEqual(['hello-dvc_1.0.0+autobuild42_all.deb']);
    expect(debField(result.debs[0], 'Version')).toBe('1.0.0+autobuild42');
    expect(treeDigest(hello)).toBe(before);
    // The entry really came from our changelog text: the package's own changelog says so.
    const changelog = execFileSync(
      'sh',
      ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - ./usr/share/doc/hello-dvc/changelog.gz | gzip -d', 'sh', result.debs[0]],
      {
        encoding: 'utf8',
      },
    );
    expect(changelog).toMatch(
      /^hello-dvc \(1\.0\.0\+autobuild42\) trixie; urgency=medium\n\n {2}\* Automated build by debian-vm-ci\n/,
    );
    expect(result.lintian).toBeDefined();
    expect(readFileSync(join(run.ctx.paths.logs, 'lintian.txt'), 'utf8')).toBe(
      result.lintian!.tags.map((t) => t.line + '\n').join(''),
    );
    // hello-dvc is not a clean package (the example's copyright is minimal): lintian has something to say.
    expect(result.lintian!.tags.length).toBeGreaterThan(0);
    expect(run.reporter.annotations.length).toBe(result.lintian!.tags.length);
    expect(run.reporter.annotations.every((a) => a.props?.title?.startsWith('lintian '))).toBe(true);
    console.log(`hello/trixie: ${result.summary}`);
  });

  it('builds a grml-debootstrap-shaped package: Build-Depends-Indep documentation plus an arch any helper', async () => {
    const run = setUp('docbuild', ['--working-directory', join(fixtures, 'docbuild'), '--build-release', 'trixie']);
    const result = await build(run);
    expect(result.debs.map((d) => basename(d))).toEqual(['dvc-docdemo-helper_0.3_amd64.deb', 'dvc-docdemo_0.3_all.deb']);
    const docs = result.debs.find((d) => basename(d).startsWith('dvc-docdemo_'))!;
    // The man page exists only if asciidoc and xsltproc (Build-Depends-Indep) ran in the build.
    expect(debContents(docs)).toContain('./usr/share/man/man8/dvc-docdemo.8.gz');
    const helper = result.debs.find((d) => basename(d).startsWith('dvc-docdemo-helper_'))!;
    expect(debField(helper, 'Architecture')).toBe('amd64');
    expect(debField(helper, 'Depends')).toMatch(/libc6/);
    console.log(`docbuild/trixie: ${result.summary}`);
  });

  it('fails a broken build with the end of the build log in the error details', async () => {
    const run = setUp('broken', ['--working-directory', join(fixtures, 'broken'), '--build-release', 'trixie']);
    const error = await build(run).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StageError);
    const stageError = error as StageError;
    expect(stageError.kind).toBe('test');
    expect(stageError.message).toMatch(/dvc-broken 1\.0 failed to build: dpkg-buildpackage exited with status \d+/);
    expect(stageError.details.length).toBeGreaterThan(5);
    expect(stageError.details.length).toBeLessThanOrEqual(30);
    expect(stageError.details.join('\n')).toContain('fatal error: dvc-missing-widget.h: No such file or directory');
    expect(readdirSync(run.ctx.paths.packages)).toEqual([]);
  });
});
