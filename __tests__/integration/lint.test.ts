import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import type { Log } from 'sarif';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StageError } from '../../src/errors.js';
import { lint } from '../../src/stages/lint.js';
import type { LintResult } from '../../src/results.js';
import { RecordingReporter, stageRun } from '../support/stage-run.js';

/*
 * Runs the lint stage with the real shellcheck over __tests__/fixtures/lint/project, whose every
 * finding is planted (see the comments in its scripts). The project is copied into a scratch git
 * repository as repo/project, so annotation paths must come out relative to the repository root.
 */

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'lint', 'project');

/** Records what the stage reports; findings() lists shellcheck's annotations. */
class LintReporter extends RecordingReporter {
  /** The findings' annotations as "level file:line:column-endColumn code" (pipeline-level annotations have no SC title). */
  findings(): string[] {
    return this.annotations
      .filter((a) => /^SC\d+ /.test(a.props?.title ?? ''))
      .map(
        ({ level, props }) =>
          `${level} ${props?.file}:${props?.startLine}:${props?.startColumn}-${props?.endColumn} ${props?.title?.split(' ')[0]}`,
      );
  }
}

function sarifValidator(): (log: unknown) => boolean {
  const require = createRequire(import.meta.url);
  const schemaPath = require.resolve('@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json');
  // draft-04 schema: see __tests__/shellcheck-report.test.ts for why these adjustments.
  const { $schema: _draft04, id, ...schema } = JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>;
  const ajv = new Ajv({ strict: false, allErrors: true, unicodeRegExp: false });
  addFormats.default(ajv);
  const validate = ajv.compile({ ...schema, $id: id as string });
  return (log) => validate(log) || expect.fail(JSON.stringify(validate.errors, null, 2));
}

let scratch: string;
let project: string;

/** Builds repo/project from the fixture plus what git cannot carry: node_modules, a binary, symlinks, old output. */
function stageProject(): void {
  const repo = join(scratch, 'repo');
  project = join(repo, 'project');
  cpSync(FIXTURE, project, { recursive: true });
  execFileSync('git', ['init', '--quiet', repo]);
  const write = (path: string, content: string | Buffer): void => {
    mkdirSync(dirname(join(project, path)), { recursive: true });
    writeFileSync(join(project, path), content);
  };
  const findings = '#!/bin/sh\ncd $1\n';
  write('node_modules/some-package/install.sh', findings);
  write('debian-vm-ci-out/lint/from-last-run.sh', findings);
  write(
    'payload.sh',
    Buffer.concat([Buffer.from('#!/bin/sh\ntail -n +3 "$0" | tar x; exit\n'), Buffer.from([0x1f, 0x8b, 0, 0])]),
  );
  writeFileSync(join(scratch, 'outside.sh'), findings);
  symlinkSync(join(scratch, 'outside.sh'), join(project, 'outside.sh'));
  symlinkSync('deploy', join(project, 'bin', 'deploy-link'));
}

interface Run {
  result?: LintResult;
  error?: StageError;
  reporter: LintReporter;
  out: string;
}

let runCount = 0;

async function runLint(flags: readonly string[], env: NodeJS.ProcessEnv = process.env, workingDirectory = project): Promise<Run> {
  runCount += 1;
  // The CLI's default output directory lies inside the working directory, with the last run's files in it:
  // discovery must not walk into it. Each test reads its reports before the next run overwrites them.
  const out = join(workingDirectory, 'debian-vm-ci-out');
  const { ctx, reporter } = stageRun({
    scratch,
    name: `lint-${runCount}`,
    logName: 'lint',
    outputDir: out,
    flags: ['--working-directory', workingDirectory, '--lint-paths', 'hooks/*.inc', '--lint-exclude', 'legacy', ...flags],
    cwd: workingDirectory,
    hostMirror: undefined,
    cacheDir: join(scratch, 'cache'),
    env,
    reporter: new LintReporter(),
  });
  try {
    return { result: await lint.run(ctx), reporter, out };
  } catch (error) {
    if (!(error instanceof StageError)) throw error;
    return { error, reporter, out };
  } finally {
    await ctx.log.close();
  }
}

/** A PATH directory holding stand-ins for commands, for fault injection. */
function fakeBin(name: string, scripts: Record<string, string>): string {
  const dir = join(scratch, name);
  mkdirSync(dir, { recursive: true });
  for (const [command, body] of Object.entries(scripts))
    writeFileSync(join(dir, command), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return dir;
}

const FAKE_VERSION = `case "$1" in --version) printf 'ShellCheck\\nversion: 0.9.0\\n'; exit 0;; esac`;

beforeAll(() => {
  scratch = realpathSync(mkdtempSync(join(tmpdir(), 'dvc-lint-it-')));
  stageProject();
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// Planted in the fixture; `never` so the run passes and everything is compared.
const EXPECTED_DEFAULT = [
  'notice project/bin/deploy:5:7-13 SC2006',
  'error project/bin/release:3:17-17 SC1037',
  'warning project/build.sh:5:1-6 SC2164',
  'notice project/build.sh:5:4-6 SC2086',
  'error project/hooks/common.inc:1:1-1 SC2148',
  'notice project/tools/inline.sh:6:7-9 SC2086',
];

describe('lint stage with the real shellcheck', () => {
  let run: Run;
  beforeAll(async () => {
    run = await runLint(['--lint-fail-on', 'never']);
  });

  it('annotates exactly the planted findings, relative to the repository root', () => {
    expect(run.error).toBeUndefined();
    expect(run.reporter.findings()).toEqual(EXPECTED_DEFAULT);
  });

  it('checks the scripts found by extension, shebang (env -S too) and lint-paths, and nothing else', () => {
    expect(run.result?.files).toEqual([
      'project/bin/deploy',
      'project/bin/release',
      'project/build.sh',
      'project/hooks/common.inc',
      'project/lib/common.bash',
      'project/tools/inline.sh',
    ]);
  });

  it('logs why candidates were skipped', () => {
    const log = readFileSync(join(run.out, 'logs', 'lint.log'), 'utf8');
    expect(log).toContain('skipped bin/deploy-link: same file as bin/deploy');
    expect(log).toContain('skipped notes/zsh-only.sh: #! names zsh, not a shell shellcheck supports');
    expect(log).toContain('skipped outside.sh: symlink to a file outside the working directory');
    expect(log).toContain('skipped payload.sh: binary content');
    expect(log).toContain('found 6 shell scripts (3 by extension, 2 by shebang, 1 from lint-paths)');
  });

  it('titles annotations with code and severity and links the wiki', () => {
    const release = run.reporter.annotations.find((a) => a.props?.file === 'project/bin/release');
    expect(release).toEqual({
      level: 'error',
      message: 'Braces are required for positionals over 9, e.g. ${10}. See https://www.shellcheck.net/wiki/SC1037',
      props: { title: 'SC1037 (error)', file: 'project/bin/release', startLine: 3, endLine: 3, startColumn: 17, endColumn: 17 },
    });
  });

  it('returns the counts, the summary line and the Markdown table', () => {
    const result = run.result!;
    expect(result.summary).toBe('6 scripts, 6 findings: 2 errors, 1 warning, 2 info, 1 style');
    expect(result.findings).toEqual({ error: 2, warning: 1, info: 2, style: 1, total: 6 });
    expect(result.failing).toBe(0);
    expect(result.shellcheckVersion).toMatch(/^\d+\.\d+/);
    expect(result.markdown).toContain('| `project/build.sh` | 0 | 1 | 1 | 0 |');
    expect(readFileSync(result.reports.markdown, 'utf8')).toBe(result.markdown);
    expect(result.reports.markdown).toBe(join(run.out, 'lint', 'summary.md'));
  });

  it('writes shellcheck json1 with repository-relative files', () => {
    const json = JSON.parse(readFileSync(join(run.out, 'lint', 'shellcheck.json'), 'utf8')) as {
      comments: { file: string; line: number; column: number; code: number; fix: unknown }[];
    };
    expect(json.comments.map((c) => `${c.file}:${c.line}:${c.column} SC${c.code}`).sort()).toEqual(
      EXPECTED_DEFAULT.map((a) => a.replace(/^\S+ /, '').replace(/-\d+ /, ' ')).sort(),
    );
    expect(json.comments.some((c) => c.fix)).toBe(true);
  });

  it('writes SARIF 2.1.0 that validates and locates every finding under %SRCROOT%', () => {
    const sarif = JSON.parse(readFileSync(join(run.out, 'lint', 'shellcheck.sarif'), 'utf8')) as Log;
    expect(sarifValidator()(sarif)).toBe(true);
    const [sarifRun] = sarif.runs;
    expect(sarifRun.tool.driver.name).toBe('ShellCheck');
    expect(sarifRun.tool.driver.version).toBe(run.result?.shellcheckVersion);
    expect(sarifRun.tool.driver.rules?.every((r) => r.helpUri === `https://www.shellcheck.net/wiki/${r.id}`)).toBe(true);
    expect(
      sarifRun.results?.map((r) => {
        const { artifactLocation, region } = r.locations![0].physicalLocation!;
        expect(artifactLocation?.uriBaseId).toBe('%SRCROOT%');
        return `${r.level} ${artifactLocation?.uri}:${region?.startLine}:${region?.startColumn}-${region?.endColumn} ${r.ruleId}`;
      }),
    ).toEqual(EXPECTED_DEFAULT.map((a) => a.replace(/^notice/, 'note')));
  });
});

describe('lint inputs', () => {
  it('lint-shell applies to scripts that declare no dialect only: shebangs and .bash keep theirs', async () => {
    const run = await runLint(['--lint-fail-on', 'never', '--lint-shell', 'sh']);
    // hooks/common.inc is now sh (SC3010 for [[ ]]) instead of unknown (SC2148); bin/deploy and lib/common.bash stay bash.
    expect(run.reporter.findings()).toEqual([
      'notice project/bin/deploy:5:7-13 SC2006',
      'error project/bin/release:3:17-17 SC1037',
      'warning project/build.sh:5:1-6 SC2164',
      'notice project/build.sh:5:4-6 SC2086',
      'warning project/hooks/common.inc:1:1-18 SC3010',
      'notice project/tools/inline.sh:6:7-9 SC2086',
    ]);
  });

  it('lint-severity reaches shellcheck', async () => {
    const run = await runLint(['--lint-fail-on', 'never', '--lint-severity', 'warning']);
    expect(run.reporter.findings()).toEqual([
      'error project/bin/release:3:17-17 SC1037',
      'warning project/build.sh:5:1-6 SC2164',
      'error project/hooks/common.inc:1:1-1 SC2148',
    ]);
  });

  it('warns about a lint-paths pattern that matches nothing', async () => {
    const run = await runLint(['--lint-fail-on', 'never', '--lint-paths', 'hooks/*.inc,tools/typo-*.sh']);
    expect(run.reporter.annotations).toContainEqual({
      level: 'warning',
      message: `lint-paths pattern 'tools/typo-*.sh' matches no file in ${project}`,
      props: { title: 'debian-vm-ci: lint-paths' },
    });
  });

  it.each([
    ['error', 2],
    ['warning', 3],
    ['info', 5],
    ['style', 6],
  ])(
    'lint-fail-on: %s fails the run as a test failure over %d findings, still annotating all and reporting counts',
    async (failOn, failing) => {
      const run = await runLint(['--lint-fail-on', failOn]);
      expect(run.error?.kind).toBe('test');
      expect(run.error?.message).toMatch(new RegExp(`^shellcheck: ${failing} findings of severity ${failOn} or worse`));
      const partial = run.error?.partial as LintResult;
      expect(partial.failing).toBe(failing);
      expect(partial.findings.total).toBe(6);
      expect(run.reporter.findings()).toEqual(EXPECTED_DEFAULT);
      expect(readFileSync(partial.reports.sarif, 'utf8')).toContain('"ruleId": "SC2148"');
    },
  );

  it('lint-fail-on: error passes when findings are below it', async () => {
    const run = await runLint(['--lint-fail-on', 'error', '--lint-exclude', 'legacy,hooks,bin/release']);
    expect(run.error).toBeUndefined();
    expect(run.result?.summary).toBe('4 scripts, 4 findings: 1 warning, 2 info, 1 style');
    expect(run.reporter.findings()).toHaveLength(4);
  });
});

describe('lint infrastructure failures', () => {
  const pathWith = (dir: string): NodeJS.ProcessEnv => ({ ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` });

  it('a shellcheck crash (exit 3) is an infrastructure error, not "no findings"', async () => {
    const bin = fakeBin('crashing', {
      shellcheck: `${FAKE_VERSION}\necho 'shellcheck: internal error: heap exhausted' >&2\nexit 3`,
    });
    const run = await runLint(['--lint-fail-on', 'never'], pathWith(bin));
    expect(run.error?.kind).toBe('infrastructure');
    expect(run.error?.message).toBe('shellcheck failed: exit status 3 (bad syntax on its command line)');
    expect(run.error?.details).toEqual(['shellcheck: internal error: heap exhausted']);
    expect(run.reporter.findings()).toEqual([]);
  });

  it.each([
    ['a crash message with exit 1', `echo 'Segmentation fault'\nexit 1`, /not the json1 we asked for: not JSON/],
    ['truncated JSON with exit 0', `printf '{"comments":[{"file":'\nexit 0`, /not the json1 we asked for: not JSON/],
    ['another format', `echo '[]'\nexit 0`, /no "comments" array/],
  ])('unreadable output (%s) is an infrastructure error', async (_name, body, message) => {
    const bin = fakeBin(`garbled-${_name.replace(/\W+/g, '-')}`, { shellcheck: `${FAKE_VERSION}\n${body}` });
    const run = await runLint(['--lint-fail-on', 'never'], pathWith(bin));
    expect(run.error?.kind).toBe('infrastructure');
    expect(run.error?.message).toMatch(message);
  });

  it('a missing shellcheck that cannot be installed is an infrastructure error', async () => {
    const bin = fakeBin('no-shellcheck', {
      'apt-get': `echo "apt-get $*" >> "${scratch}/apt-get.calls"\necho 'E: Unable to locate package shellcheck' >&2\nexit 100`,
      sudo: 'exit 1',
    });
    const run = await runLint(['--lint-fail-on', 'never'], { ...process.env, PATH: bin });
    expect(run.error?.kind).toBe('infrastructure');
    expect(run.error?.message).toMatch(/^shellcheck is not installed and installing it failed: /);
  });

  it('a project without shell scripts needs no shellcheck and still writes valid reports', async () => {
    const empty = join(scratch, 'empty-project');
    mkdirSync(join(empty, 'docs'), { recursive: true });
    writeFileSync(join(empty, 'docs', 'index.md'), '# nothing to lint\n');
    const run = await runLint(
      ['--lint-fail-on', 'style', '--lint-paths', '', '--lint-exclude', ''],
      { PATH: '/nonexistent' },
      empty,
    );
    expect(run.error).toBeUndefined();
    expect(run.result?.summary).toBe('no shell scripts found');
    expect(run.result?.shellcheckVersion).toBeUndefined();
    expect(sarifValidator()(JSON.parse(readFileSync(run.result!.reports.sarif, 'utf8')))).toBe(true);
  });
});
