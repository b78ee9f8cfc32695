import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LintSeverity } from '../config.js';
import type { Stage, StageContext } from '../context.js';
import type { Deps } from '../deps.js';
import type { LintResult } from '../results.js';
import { StageError } from '../errors.js';
import { tail } from '../host/exec.js';
import { ensureHostTools, findOnPath } from '../host/packages.js';
import { discoverScripts, findRepositoryRoot, type Discovery, type Script } from '../lint/discover.js';
import {
  annotationFor,
  compareFindings,
  countBySeverity,
  isAtLeast,
  json1Report,
  Json1FormatError,
  lintMarkdown,
  parseJson1,
  repositoryPath,
  summaryLine,
  toFindings,
  toSarif,
  type Json1Comment,
  type PathBase,
} from '../reports/shellcheck.js';

/** Well below Linux's 2 MiB limit for argv plus environment, so even a large environment leaves room. */
export const ARGV_BUDGET_BYTES = 256 * 1024;
const SHELLCHECK_TIMEOUT_SECONDS = 15 * 60;

/** What shellcheck's exit statuses above 1 mean (its man page); 1 only means "there are findings". */
const SHELLCHECK_STATUS: Record<number, string> = {
  2: 'some files could not be processed',
  3: 'bad syntax on its command line',
  4: 'bad options',
};

export interface ShellcheckInvocation {
  /** Set for the scripts that do not declare their dialect, when lint-shell is given. */
  shell: string | undefined;
  files: string[];
  /** Arguments after the shellcheck binary. */
  args: string[];
}

/** Splits paths into runs whose argv stays within budget bytes (each argument costs its bytes, a NUL and a pointer). */
export function chunkByArgvBytes(paths: readonly string[], budget = ARGV_BUDGET_BYTES): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  let used = 0;
  for (const path of paths) {
    const cost = Buffer.byteLength(path) + 1 + 8;
    if (current.length && used + cost > budget) {
      chunks.push(current);
      current = [];
      used = 0;
    }
    current.push(path);
    used += cost;
  }
  if (current.length) chunks.push(current);
  return chunks;
}

/**
 * The shellcheck runs for a set of scripts: one over everything, split only when argv would be too long.
 * shellcheck's --shell overrides shebangs, `shell=` directives, dialect extensions and .shellcheckrc
 * alike, so lint-shell goes to a separate run over the scripts that declare no dialect at all.
 */
export function planShellcheckRuns(
  scripts: readonly Script[],
  options: { severity: LintSeverity; shell: string; budget?: number },
): ShellcheckInvocation[] {
  const groups: { shell: string | undefined; files: string[] }[] = options.shell
    ? [
        { shell: undefined, files: scripts.filter((s) => s.dialect !== undefined).map((s) => s.path) },
        { shell: options.shell, files: scripts.filter((s) => s.dialect === undefined).map((s) => s.path) },
      ]
    : [{ shell: undefined, files: scripts.map((s) => s.path) }];
  return groups.flatMap(({ shell, files }) =>
    chunkByArgvBytes(files, options.budget).map((chunk) => ({
      shell,
      files: chunk,
      // `--` because a script may be called -x.sh; paths stay relative so shellcheck finds each script's .shellcheckrc.
      args: ['--format=json1', `--severity=${options.severity}`, ...(shell ? [`--shell=${shell}`] : []), '--', ...chunk],
    })),
  );
}

function describeDiscovery(discovery: Discovery): string {
  const by = (kind: Script['foundBy']): number => discovery.scripts.filter((s) => s.foundBy === kind).length;
  const n = discovery.scripts.length;
  return (
    `found ${n} shell ${n === 1 ? 'script' : 'scripts'} (${by('extension')} by extension, ${by('shebang')} by shebang, ` +
    `${by('lint-paths')} from lint-paths); ${discovery.skipped.length} candidates skipped (see the lint log)`
  );
}

/** The runner's shellcheck, else the distribution's; a shellcheck we cannot get means we cannot lint: infrastructure. */
async function locateShellcheck(deps: Deps): Promise<string> {
  try {
    await ensureHostTools(deps, 'lint', 'linting shell scripts', [{ command: 'shellcheck', package: 'shellcheck' }]);
  } catch (error) {
    throw new StageError(
      'lint',
      `shellcheck is not installed and installing it failed: ${error instanceof Error ? error.message : String(error)}`,
      'infrastructure',
      error instanceof StageError ? error.details : [],
    );
  }
  const path = findOnPath('shellcheck', deps.env);
  if (!path) throw new StageError('lint', 'shellcheck is not on PATH after installing it', 'infrastructure');
  return path;
}

async function shellcheckVersion(deps: Deps, shellcheck: string, signal: AbortSignal): Promise<string | undefined> {
  const r = await deps.exec.run([shellcheck, '--version'], { stage: 'lint', env: deps.env, signal, timeoutSeconds: 60 });
  return /^version:\s*(\S+)/m.exec(r.stdout)?.[1];
}

async function runShellcheck(
  ctx: StageContext,
  shellcheck: string,
  invocation: ShellcheckInvocation,
  cwd: string,
): Promise<Json1Comment[]> {
  const { deps, log, signal } = ctx;
  const shown = `shellcheck ${invocation.args.slice(0, invocation.args.indexOf('--')).join(' ')}`;
  log.line(`$ ${shown} -- (${invocation.files.length} files, cwd ${cwd})`);
  const t0 = performance.now();
  const r = await deps.exec.run([shellcheck, ...invocation.args], {
    stage: 'lint',
    cwd,
    env: deps.env,
    check: false,
    signal,
    timeoutSeconds: SHELLCHECK_TIMEOUT_SECONDS,
  });
  log.line(`[exit ${r.exitCode} in ${((performance.now() - t0) / 1000).toFixed(2)}s]`);
  if (r.stderr.trim()) log.line(r.stderr);
  if (r.exitCode !== 0 && r.exitCode !== 1) {
    const meaning = SHELLCHECK_STATUS[r.exitCode];
    throw new StageError(
      'lint',
      `shellcheck failed: exit status ${r.exitCode}${meaning ? ` (${meaning})` : ''}`,
      'infrastructure',
      tail(r.stderr.trim() ? r.stderr : r.stdout, 20),
    );
  }
  try {
    return parseJson1(r.stdout);
  } catch (error) {
    if (!(error instanceof Json1FormatError)) throw error;
    throw new StageError(
      'lint',
      `shellcheck exited with status ${r.exitCode} but its output is not the json1 we asked for: ${error.message}`,
      'infrastructure',
      tail(r.stderr, 20),
    );
  }
}

export const lint: Stage<'lint'> = {
  name: 'lint',
  skipReason: (config) => (config.lint ? undefined : 'lint: false'),
  async run(ctx) {
    const { config, deps, paths, log, progress } = ctx;
    const workingDirectory = realpathSync(config.workingDirectory);
    const base: PathBase = { cwd: workingDirectory, repositoryRoot: findRepositoryRoot(workingDirectory) ?? workingDirectory };
    const discovery = discoverScripts({
      root: workingDirectory,
      lintPaths: config.lintPaths,
      lintExclude: config.lintExclude,
      ignoreDirs: [config.outputDir, deps.cacheDir],
    });
    for (const { path, reason } of discovery.skipped) log.line(`skipped ${path}: ${reason}`);
    for (const pattern of discovery.unmatchedLintPaths) {
      deps.reporter.warning(`lint-paths pattern '${pattern}' matches no file in ${workingDirectory}`, {
        title: 'debian-vm-ci: lint-paths',
      });
    }
    progress(describeDiscovery(discovery));

    const comments: Json1Comment[] = [];
    let version: string | undefined;
    if (discovery.scripts.length) {
      const shellcheck = await locateShellcheck(deps);
      version = await shellcheckVersion(deps, shellcheck, ctx.signal);
      const t0 = performance.now();
      const runs = planShellcheckRuns(discovery.scripts, { severity: config.lintSeverity, shell: config.lintShell });
      for (const invocation of runs) comments.push(...(await runShellcheck(ctx, shellcheck, invocation, workingDirectory)));
      progress(
        `shellcheck ${version ?? '(unknown version)'}: ${runs.length} ${runs.length === 1 ? 'run' : 'runs'} in ` +
          `${((performance.now() - t0) / 1000).toFixed(2)}s, ${comments.length} findings`,
      );
    }

    const findings = toFindings(comments, base).sort(compareFindings);
    const files = discovery.scripts.map((s) => repositoryPath(s.path, base));
    const counts = countBySeverity(findings);
    const failing = findings.filter((f) => isAtLeast(f.severity, config.lintFailOn)).length;
    const reports = {
      json: join(paths.lint, 'shellcheck.json'),
      sarif: join(paths.lint, 'shellcheck.sarif'),
      markdown: join(paths.lint, 'summary.md'),
    };
    const markdown = lintMarkdown({
      scripts: files,
      findings,
      failOn: config.lintFailOn,
      reportFiles: ['lint/shellcheck.sarif', 'lint/shellcheck.json'],
    });
    mkdirSync(paths.lint, { recursive: true });
    writeFileSync(reports.json, JSON.stringify(json1Report(comments, base), null, 2) + '\n');
    writeFileSync(reports.sarif, JSON.stringify(toSarif(findings, { version }), null, 2) + '\n');
    writeFileSync(reports.markdown, markdown);

    for (const finding of findings) {
      const { kind, message, props } = annotationFor(finding);
      deps.reporter[kind](message, props);
    }

    const result: LintResult = {
      summary: discovery.scripts.length ? summaryLine(files.length, counts) : 'no shell scripts found',
      files,
      findings: { ...counts, total: findings.length },
      failing,
      markdown,
      shellcheckVersion: version,
      reports,
    };
    if (failing > 0) {
      throw new StageError(
        'lint',
        `shellcheck: ${failing} ${failing === 1 ? 'finding' : 'findings'} of severity ${config.lintFailOn} or worse ` +
          `(lint-fail-on: ${config.lintFailOn}); ${result.summary}`,
        'test',
        [],
        result,
      );
    }
    return result;
  },
};
