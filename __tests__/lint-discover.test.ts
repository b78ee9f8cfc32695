import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { classifyFile, hasShellDirective, looksBinary, shebangInterpreter } from '../src/lint/classify.js';
import { discoverScripts, findRepositoryRoot, shellcheckrcSetsShell, type Script } from '../src/lint/discover.js';
import { globMatcher, globToRegExp, literalBase } from '../src/lint/glob.js';
import { chunkByArgvBytes, planShellcheckRuns } from '../src/stages/lint.js';

describe('shebangInterpreter', () => {
  it.each([
    ['#!/bin/sh', 'sh'],
    ['#!/bin/bash -e', 'bash'],
    ['#! /bin/dash', 'dash'],
    ['#!/bin/dash\r', 'dash'],
    ['#!/usr/bin/env bash', 'bash'],
    ['#!/usr/bin/env -S bash -e', 'bash'],
    ['#!/usr/bin/env -Sbash', 'bash'],
    ['#!/usr/bin/env --split-string=ksh -x', 'ksh'],
    ['#!/usr/bin/env -i PATH=/bin dash', 'dash'],
    ['#!/usr/bin/env -u HOME -C /tmp sh', 'sh'],
    ['#!/usr/bin/env', 'env'],
    ['#!/bin/busybox sh', 'busybox sh'],
    ['#!/bin/busybox', 'busybox'],
    ['#!/usr/bin/env python3', 'python3'],
    ['#!/usr/bin/zsh', 'zsh'],
    ['# not a shebang', undefined],
    ['echo hi', undefined],
    ['', undefined],
  ])('%j -> %j', (line, expected) => {
    expect(shebangInterpreter(line)).toBe(expected);
  });
});

describe('hasShellDirective', () => {
  it.each([
    ['# shellcheck shell=bash\necho', true],
    ['#!/bin/sh\n\n#shellcheck disable=SC2086 shell=dash\n', true],
    ['# a comment\n# shellcheck shell=ksh', true],
    ['echo first\n# shellcheck shell=bash', false],
    ['# shellcheck disable=SC2086', false],
    ['# shell=bash without the shellcheck keyword', false],
    ['', false],
  ])('%j -> %s', (head, expected) => {
    expect(hasShellDirective(head)).toBe(expected);
  });
});

describe('classifyFile', () => {
  const file = (name: string, head: string, extra: { binary?: boolean; listed?: boolean } = {}) => ({
    name,
    head,
    binary: extra.binary ?? false,
    listed: extra.listed ?? false,
  });
  it.each([
    ['an .sh file without shebang', file('a.sh', 'echo'), { lint: true, foundBy: 'extension', dialect: undefined }],
    ['a .bash file without shebang', file('a.bash', 'echo'), { lint: true, foundBy: 'extension', dialect: 'extension' }],
    ['a .BATS file', file('t.BATS', '@test "x" {'), { lint: true, foundBy: 'extension', dialect: 'extension' }],
    [
      'an .sh file with a directive',
      file('a.sh', '# shellcheck shell=dash\n'),
      { lint: true, foundBy: 'extension', dialect: 'directive' },
    ],
    ['an .sh file with a bash shebang', file('a.sh', '#!/bin/bash\n'), { lint: true, foundBy: 'extension', dialect: 'shebang' }],
    ['no extension, sh shebang', file('deploy', '#!/bin/sh\n'), { lint: true, foundBy: 'shebang', dialect: 'shebang' }],
    ['env -S shebang', file('run', '#!/usr/bin/env -S bash -e\n'), { lint: true, foundBy: 'shebang', dialect: 'shebang' }],
    ['ash shebang', file('x', '#!/bin/ash\n'), { lint: true, foundBy: 'shebang', dialect: 'shebang' }],
    [
      'mksh with a directive',
      file('x', '#!/bin/mksh\n# shellcheck shell=ksh\n'),
      { lint: true, foundBy: 'shebang', dialect: 'directive' },
    ],
    ['listed, no shebang', file('hook.inc', 'echo', { listed: true }), { lint: true, foundBy: 'lint-paths', dialect: undefined }],
    [
      'listed python',
      file('x.py', '#!/usr/bin/env python3\n', { listed: true }),
      { lint: true, foundBy: 'lint-paths', dialect: undefined },
    ],
    ['a .txt file', file('notes.txt', 'echo'), { lint: false }],
    ['a python script', file('x', '#!/usr/bin/env python3\n'), { lint: false }],
  ])('%s', (_name, input, expected) => {
    expect(classifyFile(input)).toEqual(expected);
  });

  it.each([
    ['.sh with a zsh shebang', file('a.sh', '#!/usr/bin/env zsh\n'), /zsh, not a shell shellcheck supports/],
    ['.sh with a python shebang', file('a.sh', '#!/usr/bin/python3\n'), /python3/],
    ['mksh without a directive', file('x', '#!/bin/mksh\n'), /mksh, which shellcheck checks only with/],
    ['binary .sh (self-extracting archive)', file('setup.sh', '#!/bin/sh\n', { binary: true }), /binary/],
    ['binary listed file', file('blob', '', { binary: true, listed: true }), /binary/],
  ])('skips %s with a reason', (_name, input, reason) => {
    const verdict = classifyFile(input);
    expect(verdict.lint).toBe(false);
    expect(verdict.lint === false && verdict.reason).toMatch(reason);
  });

  it('skips a binary that is no candidate at all without a reason', () => {
    expect(classifyFile(file('logo.png', '\x89PNG', { binary: true }))).toEqual({ lint: false });
  });
});

describe('looksBinary', () => {
  it.each([
    [Buffer.from('#!/bin/sh\necho hi\n'), false],
    [Buffer.from('#!/bin/sh\nexit 0\n\0\x1f\x8b'), true],
    [Buffer.alloc(0), false],
  ])('%#', (bytes, expected) => {
    expect(looksBinary(bytes)).toBe(expected);
  });
});

describe('globs', () => {
  it.each([
    // pattern, path, matches
    ['*.sh', 'a.sh', true],
    ['*.sh', 'deep/dir/a.sh', true],
    ['*.sh', 'a.bash', false],
    ['scripts/*.sh', 'scripts/a.sh', true],
    ['scripts/*.sh', 'scripts/sub/a.sh', false],
    ['scripts/*.sh', 'other/scripts/a.sh', false],
    ['scripts/**/*.sh', 'scripts/a.sh', true],
    ['scripts/**/*.sh', 'scripts/x/y/a.sh', true],
    ['**/hooks/*', 'a/b/hooks/pre-commit', true],
    ['legacy/**', 'legacy/x/y.sh', true],
    ['./bin/run', 'bin/run', true],
    ['bin/', 'bin', true],
    ['?.sh', 'a.sh', true],
    ['?.sh', 'ab.sh', false],
    ['[ab].sh', 'b.sh', true],
    ['[!ab].sh', 'b.sh', false],
    ['[!ab].sh', 'c.sh', true],
    ['*.{sh,bash}', 'x/y.bash', true],
    ['*.{sh,bash}', 'y.ksh', false],
    ['{bin,tools/{a,b}}/*', 'tools/b/x', true],
    ['a.sh', 'xa.sh', false],
    ['a+b(c).sh', 'a+b(c).sh', true],
    ['a.sh', 'a_sh', false],
  ])('%s ~ %s -> %s', (pattern, path, expected) => {
    expect(globToRegExp(pattern).test(path)).toBe(expected);
  });

  it.each([
    [['legacy'], 'legacy/old.sh', 'legacy'],
    [['legacy/**'], 'legacy/a/b.sh', 'legacy/**'],
    [['vendor/*'], 'vendor/pkg/x.sh', 'vendor/*'],
    [['*.inc', 'x'], 'a/b.inc', '*.inc'],
    [['bin/*.sh'], 'tools/bin/x.sh', undefined],
    [[], 'a.sh', undefined],
  ])('globMatcher(%j)(%s) -> %s: a directory match covers what is below it', (patterns, path, expected) => {
    expect(globMatcher(patterns)(path)).toBe(expected);
  });

  it.each([
    ['vendor/tools/*.sh', 'vendor/tools'],
    ['node_modules/pkg/bin/run', 'node_modules/pkg/bin'],
    ['a/*/b/c.sh', 'a'],
    ['**/x.sh', ''],
    ['*.inc', ''],
    ['./hooks/{a,b}', 'hooks'],
  ])('literalBase(%s) -> %j', (pattern, expected) => {
    expect(literalBase(pattern)).toBe(expected);
  });
});

describe('planShellcheckRuns', () => {
  const scripts: Script[] = [
    { path: 'a.sh', foundBy: 'extension', dialect: 'shebang' },
    { path: 'b.sh', foundBy: 'extension', dialect: undefined },
    { path: 'c.bash', foundBy: 'extension', dialect: 'extension' },
    { path: 'hook', foundBy: 'lint-paths', dialect: undefined },
  ];

  it('runs once over everything when lint-shell is empty', () => {
    expect(planShellcheckRuns(scripts, { severity: 'style', shell: '' })).toEqual([
      {
        shell: undefined,
        files: ['a.sh', 'b.sh', 'c.bash', 'hook'],
        args: ['--format=json1', '--severity=style', '--', 'a.sh', 'b.sh', 'c.bash', 'hook'],
      },
    ]);
  });

  it('gives --shell only to scripts that declare no dialect, because --shell overrides shebangs', () => {
    expect(planShellcheckRuns(scripts, { severity: 'warning', shell: 'sh' })).toEqual([
      { shell: undefined, files: ['a.sh', 'c.bash'], args: ['--format=json1', '--severity=warning', '--', 'a.sh', 'c.bash'] },
      {
        shell: 'sh',
        files: ['b.sh', 'hook'],
        args: ['--format=json1', '--severity=warning', '--shell=sh', '--', 'b.sh', 'hook'],
      },
    ]);
  });

  it('leaves out a group that has no scripts', () => {
    const declared = scripts.filter((s) => s.dialect);
    expect(planShellcheckRuns(declared, { severity: 'style', shell: 'bash' }).map((r) => r.shell)).toEqual([undefined]);
  });

  it('splits a long list into runs that stay within the argv budget, keeping order', () => {
    const many: Script[] = Array.from({ length: 50 }, (_, i) => ({
      path: `dir/script-${String(i).padStart(2, '0')}.sh`,
      foundBy: 'extension',
      dialect: 'shebang',
    }));
    const runs = planShellcheckRuns(many, { severity: 'style', shell: '', budget: 300 });
    expect(runs.length).toBeGreaterThan(1);
    expect(runs.flatMap((r) => r.files)).toEqual(many.map((s) => s.path));
    for (const run of runs) expect(run.args.slice(-run.files.length)).toEqual(run.files);
  });
});

describe('chunkByArgvBytes', () => {
  it.each([
    [[], 100, []],
    [['a', 'b', 'c'], 100, [['a', 'b', 'c']]],
    // each costs 1 + NUL + 8-byte pointer = 10 bytes
    [['a', 'b', 'c'], 20, [['a', 'b'], ['c']]],
    [['a', 'b', 'c'], 5, [['a'], ['b'], ['c']]],
  ])('%j within %d bytes -> %j', (paths, budget, expected) => {
    expect(chunkByArgvBytes(paths, budget)).toEqual(expected);
  });
});

describe('file system', () => {
  let dir: string;
  const write = (path: string, content: string | Buffer, mode?: number): void => {
    const full = join(dir, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
    if (mode) chmodSync(full, mode);
  };
  beforeEach(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'dvc-discover-')));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('discoverScripts', () => {
    it('finds scripts by extension and shebang, and leaves out VCS, vendor, binaries, other languages and outside symlinks', () => {
      const root = join(dir, 'repo');
      write('repo/build.sh', 'echo build\n');
      write('repo/bin/deploy', '#!/usr/bin/env -S bash -e\necho deploy\n', 0o755);
      write('repo/lib/util.bash', 'echo util\n');
      write('repo/tests/a.bats', '#!/usr/bin/env bats\n@test "a" { true; }\n');
      write('repo/README.md', '# readme\n');
      write('repo/tool.py', '#!/usr/bin/env python3\n');
      write('repo/zsh.sh', '#!/bin/zsh\n');
      write('repo/installer.sh', Buffer.concat([Buffer.from('#!/bin/sh\nexit 0\n'), Buffer.alloc(5000, 0)]));
      write('repo/.git/hooks/pre-commit.sh', '#!/bin/sh\n');
      write('repo/.hg/x.sh', '#!/bin/sh\n');
      write('repo/node_modules/pkg/install.sh', '#!/bin/sh\n');
      write('repo/sub/vendor/lib.sh', '#!/bin/sh\n');
      write('outside.sh', '#!/bin/sh\n');
      symlinkSync(join(dir, 'outside.sh'), join(root, 'linked-outside.sh'));
      symlinkSync('build.sh', join(root, 'a-link-to-build.sh'));
      symlinkSync(join(root, 'bin'), join(root, 'bin-link'));

      const found = discoverScripts({ root, lintPaths: [], lintExclude: [] });
      expect(found.scripts).toEqual([
        { path: 'bin/deploy', foundBy: 'shebang', dialect: 'shebang' },
        { path: 'build.sh', foundBy: 'extension', dialect: undefined },
        { path: 'lib/util.bash', foundBy: 'extension', dialect: 'extension' },
        { path: 'tests/a.bats', foundBy: 'extension', dialect: 'shebang' },
      ]);
      expect(Object.fromEntries(found.skipped.map((s) => [s.path, s.reason]))).toEqual({
        'a-link-to-build.sh': 'same file as build.sh',
        'installer.sh': 'binary content (a NUL byte near the start)',
        'linked-outside.sh': 'symlink to a file outside the working directory',
        'zsh.sh': '#! names zsh, not a shell shellcheck supports',
      });
      expect(found.unmatchedLintPaths).toEqual([]);
    });

    it('adds lint-paths (also inside vendored trees named literally), removes lint-exclude, and reports unmatched patterns', () => {
      write('hooks/common.inc', 'echo hook\n');
      write('hooks/notes.txt', 'text\n');
      write('legacy/old.sh', '#!/bin/sh\n');
      write('legacy/keep.inc', 'echo\n');
      write('vendor/tools/run.sh', '#!/bin/sh\n');
      write('vendor/tools/other.sh', '#!/bin/sh\n');
      write('vendor/other/x.sh', '#!/bin/sh\n');
      write('src/a.sh', '#!/bin/sh\n');
      write('src/generated/b.sh', '#!/bin/sh\n');

      const found = discoverScripts({
        root: dir,
        lintPaths: ['*.inc', 'vendor/tools/run.sh', 'typo/*.sh'],
        lintExclude: ['legacy', 'src/generated/**'],
      });
      expect(found.scripts.map((s) => `${s.path} (${s.foundBy})`)).toEqual([
        'hooks/common.inc (lint-paths)',
        'src/a.sh (extension)',
        'vendor/tools/run.sh (lint-paths)',
      ]);
      expect(found.unmatchedLintPaths).toEqual(['typo/*.sh']);
    });

    it('never enters the ignored directories (the output directory inside the working directory)', () => {
      write('a.sh', '#!/bin/sh\n');
      write('debian-vm-ci-out/lint/x.sh', '#!/bin/sh\n');
      const found = discoverScripts({ root: dir, lintPaths: [], lintExclude: [], ignoreDirs: [join(dir, 'debian-vm-ci-out')] });
      expect(found.scripts.map((s) => s.path)).toEqual(['a.sh']);
    });

    it('marks scripts under a .shellcheckrc with shell= as declaring their dialect, so lint-shell leaves them alone', () => {
      write('.shellcheckrc', 'disable=SC2086\n');
      write('a.sh', 'echo\n');
      write('pinned/.shellcheckrc', '# all of these are bash\nshell=bash\n');
      write('pinned/b.sh', 'echo\n');
      const found = discoverScripts({ root: dir, lintPaths: [], lintExclude: [] });
      expect(found.scripts).toEqual([
        { path: 'a.sh', foundBy: 'extension', dialect: undefined },
        { path: 'pinned/b.sh', foundBy: 'extension', dialect: 'shellcheckrc' },
      ]);
    });

    it('finds nothing in an empty directory', () => {
      expect(discoverScripts({ root: dir, lintPaths: [], lintExclude: [] })).toEqual({
        scripts: [],
        skipped: [],
        unmatchedLintPaths: [],
      });
    });
  });

  describe('shellcheckrcSetsShell', () => {
    it('uses the nearest rc only, as shellcheck does', () => {
      write('.shellcheckrc', 'shell=bash\n');
      write('a/.shellcheckrc', 'disable=SC1090\n');
      mkdirSync(join(dir, 'a/b'), { recursive: true });
      mkdirSync(join(dir, 'c'), { recursive: true });
      expect(shellcheckrcSetsShell(join(dir, 'a/b'))).toBe(false);
      expect(shellcheckrcSetsShell(join(dir, 'c'))).toBe(true);
    });

    it('reads shellcheckrc without the dot too', () => {
      write('d/shellcheckrc', ' shell = dash\n');
      expect(shellcheckrcSetsShell(join(dir, 'd'))).toBe(true);
    });
  });

  describe('findRepositoryRoot', () => {
    it('finds the nearest directory with a .git entry (a directory, or a file in worktrees and submodules)', () => {
      mkdirSync(join(dir, 'repo/.git'), { recursive: true });
      mkdirSync(join(dir, 'repo/project/sub'), { recursive: true });
      write('repo/module/.git', 'gitdir: ../.git/modules/module\n');
      expect(findRepositoryRoot(join(dir, 'repo/project/sub'))).toBe(join(dir, 'repo'));
      expect(findRepositoryRoot(join(dir, 'repo/module'))).toBe(join(dir, 'repo/module'));
    });
  });
});
