import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { publicConfig, type Config } from './config.js';
import { type Deps, type Results, type Stage, type StageContext, type StageName, type StageRecord, underKvm } from './context.js';
import { EXIT, StageError } from './errors.js';
import type { RunResult } from './results.js';
import { StageLog } from './host/exec.js';
import { outputPaths, type OutputPaths } from './paths.js';
import { restoreCaches, type CacheRecord } from './publish/caches.js';
import { renderRunSummary } from './reports/summary.js';
import { accel } from './stages/accel.js';
import { autopkgtest } from './stages/autopkgtest.js';
import { boot } from './stages/boot.js';
import { install } from './stages/install.js';
import { lifecycle } from './stages/lifecycle.js';
import { lint } from './stages/lint.js';
import { packageStage } from './stages/package.js';
import { publish } from './stages/publish.js';
import { upgrade } from './stages/upgrade.js';
import { validate } from './stages/validate.js';
import { powerOffGuest } from './vm/guest-job.js';

export const STAGES: readonly Stage<StageName>[] = [
  accel,
  lint,
  packageStage,
  install,
  boot,
  validate,
  lifecycle,
  autopkgtest,
  upgrade,
  publish,
];

/** Runs the stages in order; stops at the first failure but always runs publish; always writes result.json and summary.md. */
export async function runPipeline(config: Config, deps: Deps, signal: AbortSignal, stages = STAGES): Promise<RunResult> {
  const paths = outputPaths(config.outputDir);
  prepareOutputDir(paths);
  const started = Date.now();
  const results: Results = {};
  const records: StageRecord[] = [];
  let failed: StageRecord | undefined;
  // A test failure in a stage that works in the guest (goss, the life cycle, autopkgtest) leaves the VM usable:
  // the other guest stages still run and give their verdicts. Any other failure stops every stage but publish.
  let blocking: StageRecord | undefined;
  // Before the first stage: the apt proxy, the build environments and the builder VM start from the cache.
  const restoredCaches = signal.aborted ? [] : await deps.reporter.group('restore caches', () => restoreCaches(config, deps));

  try {
    for (const [i, stage] of stages.entries()) {
      const isPublish = stage.name === 'publish';
      const stopper = blocking ?? (stage.usesGuest ? undefined : failed);
      if (stopper && !isPublish) {
        records.push({ name: stage.name, status: 'not-run', seconds: 0, summary: `not run: ${stopper.name} failed` });
        continue;
      }
      if (signal.aborted && !isPublish) {
        records.push({ name: stage.name, status: 'not-run', seconds: 0, summary: 'not run: cancelled' });
        continue;
      }
      const skip = stage.skipReason(config, results);
      if (skip) {
        records.push({ name: stage.name, status: 'skipped', seconds: 0, summary: skip });
        deps.reporter.info(`${stage.name}: skipped (${skip})`);
        continue;
      }
      if (isPublish) {
        // Everything before publish is final: publish uploads these files.
        writeReports(paths, config, records, results, started, deps, failed);
      }
      // The guest is powered off after the last stage that works in it; after an infrastructure failure none runs.
      const lastGuestStage = (thrown: { error: unknown } | undefined): boolean =>
        stage.usesGuest === true &&
        ((thrown !== undefined && !(thrown.error instanceof StageError && thrown.error.kind === 'test')) ||
          signal.aborted ||
          !stages.slice(i + 1).some((s) => s.usesGuest && !s.skipReason(config, results)));
      const record = await runStage(stage, config, deps, results, paths, signal, restoredCaches, lastGuestStage, records);
      records.push(record);
      if (record.status === 'failed') {
        failed ??= record;
        if (!(stage.usesGuest && record.failureKind === 'test')) blocking ??= record;
      }
    }
  } finally {
    await results.boot?.vm.shutdown('pipeline end').catch(() => undefined);
    // The stages' working files under the output dir (builder job, conversion probes) are not reports.
    rmSync(paths.work, { recursive: true, force: true });
  }
  const result = writeReports(paths, config, records, results, started, deps, failed);
  deps.reporter.setOutput('result', result.status);
  deps.reporter.setOutput('tests', result.goss?.tests ?? 0);
  deps.reporter.setOutput('failures', result.goss?.failures ?? 0);
  deps.reporter.setOutput('image', result.image ?? '');
  deps.reporter.setOutput('report-dir', paths.root);
  deps.reporter.setOutput('boot-seconds', result.bootSeconds ?? '');
  deps.reporter.setOutput('accel', result.accel ?? '');
  await deps.reporter.writeSummary(renderRunSummary(result)).catch((e: unknown) => {
    deps.reporter.warning(`could not write the job summary: ${String(e)}`);
  });
  return result;
}

async function runStage(
  stage: Stage<StageName>,
  config: Config,
  deps: Deps,
  results: Results,
  paths: OutputPaths,
  signal: AbortSignal,
  restoredCaches: readonly CacheRecord[],
  lastGuestStage: (thrown: { error: unknown } | undefined) => boolean,
  /** The records of the stages before this one. */
  records: readonly StageRecord[],
): Promise<StageRecord> {
  const log = new StageLog(`${paths.logs}/${stage.name}.log`, (s) => deps.reporter.redact(s));
  const failedBefore = records.some((r) => r.status === 'failed');
  const install = records.find((r) => r.name === 'install');
  const ctx: StageContext = {
    config,
    deps,
    results,
    paths,
    log,
    signal,
    restoredCaches,
    runSoFar: {
      status: failedBefore ? 'failed' : 'passed',
      installRan: install?.status === 'passed' || install?.status === 'failed',
    },
    progress(message) {
      log.line(`# ${message}`);
      deps.reporter.info(`${stage.name}: ${message}`);
    },
  };
  const t0 = performance.now();
  const seconds = (): number => Math.round((performance.now() - t0) / 100) / 10;
  try {
    const result = await deps.reporter.group(stage.name, async () => {
      let thrown: { error: unknown } | undefined;
      try {
        const r = await stage.run(ctx);
        (results as Record<string, unknown>)[stage.name] = r;
        return r;
      } catch (error) {
        thrown = { error };
        throw error;
      } finally {
        if (lastGuestStage(thrown)) {
          // diagnostics: failure — the guest's state after the failure, before it goes away.
          const failure = thrown !== undefined || failedBefore;
          const diagnostics = config.diagnostics === 'failure' && failure ? paths.diagnostics : undefined;
          await powerOffGuest(ctx, ctx.results.boot?.vm, underKvm(ctx.results), diagnostics);
        }
      }
    });
    const summary = (result as { summary?: string }).summary;
    deps.reporter.info(`${stage.name}: passed in ${seconds()}s${summary ? ` (${summary})` : ''}`);
    return { name: stage.name, status: 'passed', seconds: seconds(), summary };
  } catch (e) {
    const err = e instanceof StageError ? e : new StageError(stage.name, e instanceof Error ? (e.stack ?? e.message) : String(e));
    if (err.partial !== undefined) (results as Record<string, unknown>)[stage.name] = err.partial;
    const summary = (err.partial as { summary?: string } | undefined)?.summary;
    const message = deps.reporter.redact(err.message);
    deps.reporter.error(message, { title: `debian-vm-ci: ${stage.name} failed` });
    if (err.details.length) deps.reporter.info(deps.reporter.redact(err.details.join('\n')));
    log.line(`# FAILED: ${message}`);
    return {
      name: stage.name,
      status: 'failed',
      seconds: seconds(),
      error: message,
      failureKind: err.kind,
      details: err.details.map((d) => deps.reporter.redact(d)),
      summary,
    };
  } finally {
    await log.close();
  }
}

function prepareOutputDir(paths: OutputPaths): void {
  // A previous run's reports in the same directory would be mistaken for this run's.
  for (const p of [
    paths.resultJson,
    paths.summaryMd,
    paths.logs,
    paths.lint,
    paths.goss,
    paths.diagnostics,
    paths.autopkgtest,
    paths.lifecycle,
    paths.upgrade,
    paths.serialLog,
  ]) {
    rmSync(p, { recursive: true, force: true });
  }
  for (const d of [paths.root, paths.logs]) mkdirSync(d, { recursive: true });
}

function writeReports(
  paths: OutputPaths,
  config: Config,
  records: readonly StageRecord[],
  results: Readonly<Results>,
  started: number,
  deps: Deps,
  failed: StageRecord | undefined,
): RunResult {
  const anyFailed = failed ?? records.find((r) => r.status === 'failed');
  // Several guest stages can fail: any infrastructure failure makes the run's verdict incomplete (exit 3).
  const infrastructure = records.find((r) => r.status === 'failed' && r.failureKind !== 'test');
  const kind = infrastructure ? (infrastructure.failureKind ?? 'infrastructure') : anyFailed?.failureKind;
  const result: RunResult = {
    status: anyFailed ? 'failed' : 'passed',
    exitCode: anyFailed ? (kind === 'test' ? EXIT.test : EXIT.infrastructure) : EXIT.passed,
    failureKind: kind,
    error: anyFailed ? `${anyFailed.name}: ${anyFailed.error}` : undefined,
    startedAt: new Date(started).toISOString(),
    seconds: Math.round((Date.now() - started) / 100) / 10,
    accel: results.accel?.accel,
    accelWarning: results.accel?.warning,
    bootSeconds: results.boot?.bootSeconds,
    goss: results.validate
      ? { tests: results.validate.tests, failures: results.validate.failures, skipped: results.validate.skipped }
      : undefined,
    autopkgtest: results.autopkgtest && {
      tests: results.autopkgtest.tests.length,
      passed: results.autopkgtest.passed,
      failed: results.autopkgtest.failed,
      skipped: results.autopkgtest.skipped,
      flaky: results.autopkgtest.flaky,
    },
    lifecycle: results.lifecycle && {
      passed: !records.some((r) => r.name === 'lifecycle' && r.status === 'failed'),
      steps: results.lifecycle.steps.map((s) => `${s.name}:${s.exitCode}`),
      leftovers: results.lifecycle.leftoverCount,
      missing: results.lifecycle.missingCount,
      scriptErrors: results.lifecycle.scriptErrors.length,
    },
    upgrade: results.upgrade && {
      from: results.upgrade.from,
      to: results.upgrade.to,
      kernel: results.upgrade.kernel,
      upgraded: results.upgrade.upgraded,
      bootSeconds: results.upgrade.bootSeconds,
      goss: results.upgrade.goss && {
        tests: results.upgrade.goss.tests,
        failures: results.upgrade.goss.failures,
        skipped: results.upgrade.goss.skipped,
      },
    },
    image: results.install?.image,
    lint: results.lint && {
      files: results.lint.files.length,
      findings: results.lint.findings.total,
      errors: results.lint.findings.error,
      warnings: results.lint.findings.warning,
      info: results.lint.findings.info,
      style: results.lint.findings.style,
    },
    lintian: results.package?.lintian && {
      tags: results.package.lintian.tags.length,
      errors: results.package.lintian.tags.filter((t) => t.severity === 'error').length,
      warnings: results.package.lintian.tags.filter((t) => t.severity === 'warning').length,
    },
    tables: {
      goss: results.validate?.markdown,
      lifecycle: results.lifecycle?.markdown,
      autopkgtest: results.autopkgtest?.markdown,
      upgrade: results.upgrade?.markdown,
      lint: results.lint?.findings.total ? results.lint.markdown : undefined,
    },
    publish: results.publish && {
      artifacts: results.publish.artifacts,
      image: results.publish.image,
      caches: results.publish.caches,
      cachesOff: results.publish.cachesOff,
    },
    stages: [...records],
    config: publicConfig(config),
  };
  const json = deps.reporter.redactJson(result);
  writeFileSync(paths.resultJson, json + '\n');
  writeFileSync(paths.summaryMd, deps.reporter.redact(renderRunSummary(result)));
  return result;
}
