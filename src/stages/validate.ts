import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Stage } from '../context.js';
import type { ValidateResult } from '../results.js';
import { StageError } from '../errors.js';
import { resolveGoss } from '../goss/binary.js';
import { findRepositoryRoot } from '../lint/discover.js';
import { classifyGossRun, gossValidateArgv } from '../goss/command.js';
import { gossAnnotations, gossToJUnit, gossToMarkdown, gossToTap, type GossReport } from '../reports/goss.js';
import { commandLine, GuestSession, GuestSessionError, type CommandResult } from '../vm/session.js';

export const validate: Stage<'validate'> = {
  name: 'validate',
  usesGuest: true,
  skipReason: (config) => (!config.install ? 'install: false' : config.validate ? undefined : 'validate: false'),
  async run(ctx) {
    const { config, deps, results, paths, progress } = ctx;
    const booted = results.boot;
    if (!booted) throw new StageError('validate', 'there is no booted VM to validate');
    const goss = await resolveGoss(config, deps);
    progress(`goss ${goss.version} (${goss.source}) from ${goss.path}`);
    const kvm = results.accel?.accel === 'kvm';
    let gossRun: CommandResult;
    try {
      const session = await GuestSession.shared(booted.vm, {
        password: config.password,
        shareDir: booted.shareDir,
        signal: ctx.signal,
        progress,
      });
      session.put('goss', { file: goss.path }, 0o755);
      session.put('goss.yaml', { file: config.gossfile });
      if (config.gossVars) session.put('vars.yaml', { file: config.gossVars });
      const argv = gossValidateArgv({
        goss: './goss',
        gossfile: './goss.yaml',
        vars: config.gossVars ? './vars.yaml' : undefined,
        retryTimeout: config.gossRetryTimeout,
      });
      gossRun = await session.run(commandLine(argv), {
        timeoutSeconds: config.gossRetryTimeout + (kvm ? 300 : 900),
        what: 'the goss run',
      });
      progress(`goss ran in ${gossRun.seconds}s (exit ${gossRun.exitCode})`);
      const diagnosticsSeconds = await session.diagnostics(paths.diagnostics, kvm ? 120 : 600);
      progress(`diagnostics gathered in ${diagnosticsSeconds}s`);
    } catch (e) {
      if (e instanceof GuestSessionError)
        throw new StageError('validate', e.message, 'infrastructure', booted.vm.watcher.tail(20));
      throw new StageError(
        'validate',
        `running goss in the guest failed: ${e instanceof Error ? e.message : String(e)}`,
        'infrastructure',
        booted.vm.watcher.tail(20),
      );
    }
    const { stdout, stderr, exitCode } = gossRun;

    mkdirSync(paths.goss, { recursive: true });
    writeFileSync(join(paths.goss, 'goss.stdout.txt'), stdout);
    const run = classifyGossRun(exitCode, stdout, stderr);
    // Annotations name files relative to the repository root, where GitHub looks for them.
    const gossfileRel = relative(findRepositoryRoot(config.workingDirectory) ?? config.workingDirectory, config.gossfile);
    if (run.kind === 'load-error') {
      throw new StageError('validate', `goss could not load ${gossfileRel} (exit ${exitCode}): ${run.message}`, 'test');
    }
    if (run.kind === 'error') {
      throw new StageError(
        'validate',
        `goss failed to run (exit ${exitCode}): ${run.message}`,
        'infrastructure',
        stdout.split('\n').slice(-20),
      );
    }
    const report: GossReport = run.report;
    const finalJson =
      stdout
        .split(/\r?\n/)
        .filter((l) => /^\s*\{"results":/.test(l))
        .at(-1) ?? '{}';
    writeFileSync(join(paths.goss, 'goss.json'), JSON.stringify(JSON.parse(finalJson), null, 2) + '\n');
    writeFileSync(join(paths.goss, 'goss.junit.xml'), gossToJUnit(report, { suiteName: `goss ${config.release}` }));
    writeFileSync(join(paths.goss, 'goss.tap'), gossToTap(report));
    const markdown = gossToMarkdown(report);
    writeFileSync(join(paths.goss, 'goss.md'), markdown);
    const s = report.summary;
    const result: ValidateResult = {
      summary: `${s.passed}/${s.tests - s.skipped} goss tests passed${s.skipped ? `, ${s.skipped} skipped` : ''}${run.attempts > 1 ? ` after ${run.attempts} attempts` : ''}`,
      tests: s.tests,
      failures: s.failed,
      skipped: s.skipped,
      markdown,
      goss: { version: goss.version, source: goss.source },
      attempts: run.attempts,
    };
    progress(result.summary);
    if (run.kind === 'failed') {
      for (const a of gossAnnotations(report, gossfileRel)) deps.reporter.error(a.message, { title: a.title, file: a.file });
      throw new StageError(
        'validate',
        `${s.failed} of ${s.tests} goss tests failed${run.retryTimedOut ? ` (still failing after goss-retry-timeout ${config.gossRetryTimeout}s)` : ''}`,
        'test',
        report.tests
          .filter((t) => t.outcome === 'failed')
          .slice(0, 10)
          .map((t) => `${t.resourceType} ${t.resourceId} ${t.property}: expected ${t.expected}, found ${t.found}`),
        result,
      );
    }
    return result;
  },
};
