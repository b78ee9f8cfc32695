import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { autopkgtestControl, autopkgtestSkip } from '../config.js';
import { type Stage, underKvm } from '../context.js';
import type { AutopkgtestResult } from '../results.js';
import { StageError } from '../errors.js';
import { scratchDir } from '../host/scratch.js';
import { findRepositoryRoot } from '../lint/discover.js';
import {
  autopkgtestExit,
  autopkgtestToJUnit,
  autopkgtestToMarkdown,
  countOutcomes,
  otherOutcomes,
  parseAutopkgtestSummary,
} from '../autopkgtest/summary.js';
import { guestJobError, packGuestInput, runGuestJob, tamperError } from '../vm/guest-job.js';

/** The script the guest runs (a file of its own, linted like any shell the action runs). */
export const RUN_IN_GUEST = readFileSync(new URL('../autopkgtest/autopkgtest-in-guest.sh', import.meta.url), 'utf8');

/** Exit statuses of autopkgtest-in-guest.sh's own set-up steps, before autopkgtest ran. */
const SETUP_FAILURE: Record<number, string> = {
  100: 'apt-get update in the guest failed',
  101: 'installing autopkgtest in the guest failed',
  102: 'unpacking the source tree and packages in the guest failed',
  103: 'the guest found no built packages in its input',
};

/** Names the guest may hand back (autopkgtest's output files): plain, no dot first. */
const OUTPUT_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,200}$/;

export const autopkgtest: Stage<'autopkgtest'> = {
  name: 'autopkgtest',
  usesGuest: true,
  skipReason: (config, results) =>
    autopkgtestSkip(config) ?? (results.package ? undefined : 'no packages were built by this run'),
  async run(ctx) {
    const { config, deps, results, paths, progress } = ctx;
    const booted = results.boot;
    const built = results.package;
    if (!booted || !built) throw new StageError('autopkgtest', 'there is no booted VM or no built package to test');
    const kvm = underKvm(results);
    const work = scratchDir(ctx, 'autopkgtest');
    try {
      // The input: the source tree (debian/tests and whatever the tests use) and the .deb files of this run.
      const tarball = await packGuestInput(ctx, 'autopkgtest', config, work.path, {
        debs: built.debs,
        source: config.workingDirectory,
      });
      progress(
        `autopkgtest of ${built.sourceName} ${built.version} with ${built.debs.length} built package(s), null server in the guest`,
      );
      const { session, run, proxyTrouble } = await runGuestJob(ctx, 'autopkgtest', config, results.boot, {
        script: { name: 'autopkgtest-run.sh', text: RUN_IN_GUEST },
        inputs: { 'autopkgtest-input.tar': tarball },
        // A walled VM (vm-network: restricted) has no internet: such tests are skipped and say why.
        args: [String(config.autopkgtestTimeout), config.vmNetwork === 'restricted' ? 'skip' : 'run'],
        timeoutSeconds: config.autopkgtestTimeout + (kvm ? 120 : 600),
        what: 'autopkgtest',
      });
      const output = run.stdout.split(/\r?\n/);
      const setup = SETUP_FAILURE[run.exitCode];
      if (setup) throw guestJobError('autopkgtest', { session, run, proxyTrouble }, setup);

      // autopkgtest's output directory, as far as the guest handed it back.
      mkdirSync(paths.autopkgtest, { recursive: true });
      const names = (session.get('autopkgtest-out.list')?.toString('utf8') ?? '').split('\n').filter((n) => OUTPUT_NAME.test(n));
      for (const name of names) {
        const data = session.get(`autopkgtest-out.${name}`);
        if (data) writeFileSync(join(paths.autopkgtest, name), data);
      }
      const summaryText = session.get('autopkgtest-out.summary')?.toString('utf8') ?? '';
      const summary = parseAutopkgtestSummary(summaryText);
      const exit = autopkgtestExit(run.exitCode);
      const counts = countOutcomes(summary.tests);
      const suite = `autopkgtest ${built.sourceName} ${config.release}`;
      writeFileSync(join(paths.autopkgtest, 'autopkgtest.junit.xml'), autopkgtestToJUnit(summary.tests, suite, built.sourceName));
      const markdown = autopkgtestToMarkdown(summary.tests, suite);
      writeFileSync(join(paths.autopkgtest, 'autopkgtest.md'), markdown);
      const version = /^debian-vm-ci: autopkgtest (\S+)$/m.exec(run.stdout)?.[1] ?? 'unknown';
      const result: AutopkgtestResult = {
        summary:
          [`${counts.passed}/${counts.tests} autopkgtests passed`, ...otherOutcomes(counts)].join(', ') +
          ` (autopkgtest ${version}, exit ${run.exitCode})`,
        ...counts,
        tests: summary.tests,
        exitCode: run.exitCode,
        autopkgtestVersion: version,
        markdown,
        seconds: run.seconds,
      };
      progress(result.summary);
      // A link planted in place of the summary would hide the tests' verdicts.
      const planted = tamperError('autopkgtest', session.takeTampered(), result);
      if (planted) throw planted;
      const lastLines = [...summary.notes, ...output.slice(-15)];
      if (exit.kind === 'infrastructure') {
        throw new StageError(
          'autopkgtest',
          `autopkgtest: ${exit.meaning} (exit ${run.exitCode})`,
          'infrastructure',
          lastLines,
          result,
        );
      }
      if (exit.kind === 'badpkg') {
        throw new StageError('autopkgtest', `autopkgtest: ${exit.meaning} (exit ${run.exitCode})`, 'test', lastLines, result);
      }
      if (counts.failed) {
        const control = relative(
          findRepositoryRoot(config.workingDirectory) ?? config.workingDirectory,
          autopkgtestControl(config),
        );
        for (const t of summary.tests.filter((x) => x.outcome === 'failed')) {
          deps.reporter.error(`autopkgtest ${t.name} failed: ${t.detail}`, { title: `autopkgtest: ${t.name}`, file: control });
        }
        throw new StageError(
          'autopkgtest',
          `${counts.failed} of ${counts.tests} autopkgtests failed`,
          'test',
          summary.tests.filter((t) => t.outcome === 'failed').map((t) => `${t.name}: ${t.detail}`),
          result,
        );
      }
      if (exit.kind === 'none-ran') deps.reporter.warning(`autopkgtest: ${exit.meaning}`);
      return result;
    } finally {
      work.release();
    }
  },
};
