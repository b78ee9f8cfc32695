/**
 * goss in a booted guest, through its GuestSession: the binary and the gossfile go in through the share, the
 * report comes back, and the JSON, JUnit, TAP and Markdown reports are written. The validate stage runs it on
 * the installed system, the upgrade stage again after the release upgrade.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Config } from '../config.js';
import type { StageIo } from '../deps.js';
import { StageError } from '../errors.js';
import { findRepositoryRoot } from '../lint/discover.js';
import { gossAnnotations, gossToJUnit, gossToMarkdown, gossToTap, type GossReport } from '../reports/goss.js';
import type { StageName, ValidateResult } from '../results.js';
import { ConsoleFloodError, type GuestVm } from '../vm/guest.js';
import { commandLine, GuestSession, GuestSessionError, type CommandResult } from '../vm/session.js';
import { tamperError } from '../vm/guest-job.js';
import { resolveGoss } from './binary.js';
import { classifyGossRun, gossValidateArgv } from './command.js';

export interface GossInGuestOptions {
  vm: GuestVm;
  /** The host directory shared with this VM. */
  shareDir: string;
  gossfile: string;
  /** Where goss.json, goss.junit.xml, goss.tap, goss.md and goss.stdout.txt go. */
  reportDir: string;
  /** Where the guest's diagnostics go. */
  diagnosticsDir: string;
  /** The guest runs under KVM (shorter deadlines than under TCG). */
  kvm: boolean;
  /** The JUnit testsuite's name ("goss bookworm"). */
  suiteName: string;
  /** The Markdown table's heading; gossToMarkdown's own when absent. */
  heading?: string;
}

/** Runs goss in the guest; a failing goss is a StageError of kind test with the result as its partial. */
export async function gossInGuest(
  io: StageIo,
  stage: StageName,
  config: Config,
  opts: GossInGuestOptions,
): Promise<ValidateResult> {
  const { deps, progress } = io;
  const goss = await resolveGoss(config, deps);
  progress(`goss ${goss.version} (${goss.source}) from ${goss.path}`);
  const { kvm } = opts;
  let gossRun: CommandResult;
  let tampered: string[];
  try {
    const session = await GuestSession.shared(opts.vm, {
      password: config.password,
      shareDir: opts.shareDir,
      signal: io.signal,
      progress,
    });
    session.put('goss', { file: goss.path }, 0o755);
    session.put('goss.yaml', { file: opts.gossfile });
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
    // diagnostics: failure gathers them only when goss did not pass (and the pipeline after any other failure in the guest).
    if (config.diagnostics === 'always' || classifyGossRun(gossRun.exitCode, gossRun.stdout, gossRun.stderr).kind !== 'passed') {
      const diagnosticsSeconds = await session.diagnostics(opts.diagnosticsDir, kvm ? 120 : 600);
      progress(`diagnostics gathered in ${diagnosticsSeconds}s`);
    }
    tampered = session.takeTampered();
  } catch (e) {
    if (e instanceof GuestSessionError) throw new StageError(stage, e.message, 'infrastructure', opts.vm.watcher.tail(20));
    // The system under test flooding its console is its failure, as during the boot.
    if (e instanceof ConsoleFloodError)
      throw new StageError(
        stage,
        e.message,
        'test',
        opts.vm.watcher.tail(3).map((l) => l.slice(0, 200)),
      );
    throw new StageError(
      stage,
      `running goss in the guest failed: ${e instanceof Error ? e.message : String(e)}`,
      'infrastructure',
      opts.vm.watcher.tail(20),
    );
  }
  const { stdout, stderr, exitCode } = gossRun;

  mkdirSync(opts.reportDir, { recursive: true });
  writeFileSync(join(opts.reportDir, 'goss.stdout.txt'), stdout);
  const run = classifyGossRun(exitCode, stdout, stderr);
  // A guest of ours writes only regular files into the share: anything else there was planted by the system under
  // test, and is a failure of that system, said first.
  if (run.kind === 'error' || run.kind === 'load-error') {
    const planted = tamperError(stage, tampered);
    if (planted) throw planted;
  }
  // Annotations name files relative to the repository root, where GitHub looks for them.
  const gossfileRel = relative(findRepositoryRoot(config.workingDirectory) ?? config.workingDirectory, opts.gossfile);
  if (run.kind === 'load-error') {
    throw new StageError(stage, `goss could not load ${gossfileRel} (exit ${exitCode}): ${run.message}`, 'test');
  }
  if (run.kind === 'error') {
    throw new StageError(
      stage,
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
  writeFileSync(join(opts.reportDir, 'goss.json'), JSON.stringify(JSON.parse(finalJson), null, 2) + '\n');
  writeFileSync(join(opts.reportDir, 'goss.junit.xml'), gossToJUnit(report, { suiteName: opts.suiteName }));
  writeFileSync(join(opts.reportDir, 'goss.tap'), gossToTap(report));
  const markdown = gossToMarkdown(report, opts.heading ? { heading: opts.heading } : {});
  writeFileSync(join(opts.reportDir, 'goss.md'), markdown);
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
  const planted = tamperError(stage, tampered, result);
  if (planted) throw planted;
  if (run.kind === 'failed') {
    for (const a of gossAnnotations(report, gossfileRel)) deps.reporter.error(a.message, { title: a.title, file: a.file });
    throw new StageError(
      stage,
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
}
