import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Stage } from '../context.js';
import type { LifecycleResult } from '../results.js';
import { StageError } from '../errors.js';
import { scratchDir } from '../host/scratch.js';
import {
  lifecycleProblems,
  lifecycleToJUnit,
  lifecycleToMarkdown,
  MAX_LISTED,
  parseLines,
  parseSteps,
  type LifecycleReport,
} from '../lifecycle/report.js';
import { guestJobError, packGuestInput, runGuestJob, tamperError } from '../vm/guest-job.js';

/** The script the guest runs (a file of its own, linted like any shell the action runs). */
export const RUN_IN_GUEST = readFileSync(new URL('../lifecycle/lifecycle-in-guest.sh', import.meta.url), 'utf8');

const SETUP_FAILURE: Record<number, string> = {
  100: 'apt-get update in the guest failed',
  102: 'unpacking the built packages in the guest failed',
};

/** The guest's output files and their names in lifecycle/. */
const OUTPUTS = { steps: 'steps.tsv', leftovers: 'leftovers.txt', missing: 'missing.txt', 'script-errors': 'script-errors.txt' };

export const lifecycle: Stage<'lifecycle'> = {
  name: 'lifecycle',
  usesGuest: true,
  skipReason(config, results) {
    if (!config.lifecycle) return 'lifecycle: false';
    if (!config.install) return 'install: false, so there is no VM to test in';
    return results.package ? undefined : 'no packages were built by this run';
  },
  async run(ctx) {
    const { config, deps, results, paths, progress } = ctx;
    const built = results.package;
    if (!built) throw new StageError('lifecycle', 'there are no built packages');
    const work = scratchDir(ctx, 'lifecycle');
    try {
      const tarball = await packGuestInput(ctx, 'lifecycle', config, work.path, { debs: built.debs });
      progress(`life cycle of ${built.debs.map((d) => basename(d)).join(', ')} in the booted guest`);
      const { session, run, proxyTrouble } = await runGuestJob(ctx, 'lifecycle', config, results.boot, {
        script: { name: 'lifecycle-run.sh', text: RUN_IN_GUEST },
        inputs: { 'lifecycle-input.tar': tarball },
        args: [],
        timeoutSeconds: config.lifecycleTimeout,
        what: 'the life cycle',
      });
      if (run.exitCode !== 0) {
        const why = SETUP_FAILURE[run.exitCode] ?? `the life cycle script exited with status ${run.exitCode}`;
        throw guestJobError('lifecycle', { session, run, proxyTrouble }, why);
      }
      mkdirSync(paths.lifecycle, { recursive: true });
      const read = (name: keyof typeof OUTPUTS): string => {
        const data = session.get(`lifecycle-out.${name}`);
        if (data) writeFileSync(join(paths.lifecycle, OUTPUTS[name]), data);
        return data?.toString('utf8') ?? '';
      };
      const report: LifecycleReport = {
        steps: parseSteps(read('steps')),
        leftovers: parseLines(read('leftovers')),
        missing: parseLines(read('missing')),
        scriptErrors: parseLines(read('script-errors')),
      };
      writeFileSync(join(paths.lifecycle, 'output.txt'), run.stdout);
      const heading = `lifecycle ${built.sourceName} ${built.version} on ${config.release}`;
      writeFileSync(join(paths.lifecycle, 'lifecycle.junit.xml'), lifecycleToJUnit(report, heading, built.sourceName));
      const markdown = lifecycleToMarkdown(report, heading);
      writeFileSync(join(paths.lifecycle, 'lifecycle.md'), markdown);
      const problems = lifecycleProblems(report);
      const result: LifecycleResult = {
        summary: problems.length
          ? `${problems.length} problem(s): ${problems[0]}`
          : `${report.steps.map((s) => s.name).join(', ')}: clean (nothing left behind, nothing gone)`,
        steps: report.steps,
        leftovers: report.leftovers.slice(0, MAX_LISTED),
        leftoverCount: report.leftovers.length,
        missing: report.missing.slice(0, MAX_LISTED),
        missingCount: report.missing.length,
        scriptErrors: report.scriptErrors.slice(0, MAX_LISTED),
        markdown,
        seconds: run.seconds,
      };
      progress(result.summary);
      // A link planted in place of a report (leftovers, say) would make the life cycle look clean.
      const planted = tamperError('lifecycle', session.takeTampered(), result);
      if (planted) throw planted;
      if (problems.length) {
        for (const p of problems) deps.reporter.error(p, { title: `lifecycle: ${built.sourceName}` });
        throw new StageError(
          'lifecycle',
          `the life cycle of ${built.sourceName} failed: ${problems[0]}`,
          'test',
          [
            ...problems,
            ...report.leftovers.slice(0, 10).map((p) => `left behind: ${p}`),
            ...report.missing.slice(0, 10).map((p) => `gone: ${p}`),
          ],
          result,
        );
      }
      return result;
    } finally {
      work.release();
    }
  },
};
