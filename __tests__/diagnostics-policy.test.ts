import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import type { Deps, Stage, StageName } from '../src/context.js';
import { cliInputs } from '../src/entry.js';
import { StageError } from '../src/errors.js';
import { HostExec } from '../src/host/exec.js';
import { runPipeline } from '../src/pipeline.js';
import type { BootResult } from '../src/results.js';
import { ResourceTracker } from '../src/state.js';
import { GUEST_DIAGNOSTICS, GuestSession } from '../src/vm/session.js';
import { fakeGuest } from './support/fake-guest.js';
import { parseContext } from './support/parse-context.js';
import { RecordingReporter } from './support/stage-run.js';

/*
 * When the pipeline gathers the guest's diagnostics (input `diagnostics`): the real pipeline with stages that
 * use a console-faithful guest (support/fake-guest.ts) in place of QEMU, so that only the policy is under test.
 */
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const PASSWORD = 'Diag-Pw-1';

function guestStage(name: 'validate' | 'lifecycle', outcome: 'pass' | 'fail'): Stage<StageName> {
  return {
    name,
    usesGuest: true,
    skipReason: () => undefined,
    async run(ctx) {
      const boot = ctx.results.boot as BootResult;
      const session = await GuestSession.shared(boot.vm, { password: PASSWORD, shareDir: boot.shareDir });
      await session.run('true', { timeoutSeconds: 5 });
      if (outcome === 'fail') throw new StageError(name, `${name} found a fault`, 'test');
      // The result's shape as the run's report reads it; its content is not under test.
      return { summary: `${name} passed`, steps: [], leftoverCount: 0, missingCount: 0, scriptErrors: [] } as never;
    },
  };
}

async function run(policy: 'always' | 'failure', stages: Stage<StageName>[]) {
  const scratch = mkdtempSync(join(tmpdir(), 'dvc-diagnostics-test-'));
  dirs.push(scratch);
  const share = join(scratch, 'share');
  const guest = fakeGuest(share, { password: PASSWORD });
  rmSync(share, { recursive: true, force: true });
  const boot: Stage<StageName> = {
    name: 'boot',
    skipReason: () => undefined,
    async run() {
      mkdirSync(share);
      return { summary: 'booted', vm: guest.vm, bootSeconds: 1, shareDir: share, milestones: [] } as never;
    },
  };
  const reporter = new RecordingReporter();
  const resources = new ResourceTracker(join(scratch, 'resources.json'));
  const deps: Deps = {
    exec: new HostExec(reporter, resources),
    reporter,
    resources,
    env: process.env,
    github: undefined,
    cacheDir: join(scratch, 'cache'),
  };
  const out = join(scratch, 'out');
  const config = parseConfig(
    cliInputs(['--output-dir', out, '--validate', 'false', '--cache', 'false', '--diagnostics', policy]),
    parseContext(scratch, { defaultOutputDir: out, randomPassword: () => PASSWORD }),
  );
  const result = await runPipeline(config, deps, new AbortController().signal, [boot, ...stages]);
  const diagnostics = join(out, 'diagnostics');
  return {
    result,
    reporter,
    stopped: guest.stopped(),
    typed: guest.typed,
    diagnostics: existsSync(diagnostics) ? readdirSync(diagnostics).sort() : undefined,
  };
}

const ALL = GUEST_DIAGNOSTICS.map(([file]) => file).sort();

describe('the diagnostics input', () => {
  it('failure (the default): none after a run that passed; the guest is still powered off', async () => {
    const r = await run('failure', [guestStage('validate', 'pass'), guestStage('lifecycle', 'pass')]);
    expect(r.result.status).toBe('passed');
    expect(r.diagnostics).toBeUndefined();
    expect(r.typed).toContain('systemctl poweroff\n');
    expect(r.stopped).toBe(true);
  });

  it('failure: all of them after a stage in the guest failed, at the end of the last guest stage, before the power-off', async () => {
    const r = await run('failure', [guestStage('validate', 'fail'), guestStage('lifecycle', 'pass')]);
    expect(r.result.status).toBe('failed');
    expect(r.result.stages.map((s) => `${s.name}:${s.status}`)).toEqual(['boot:passed', 'validate:failed', 'lifecycle:passed']);
    expect(r.diagnostics).toEqual(ALL);
    // Gathered once, after lifecycle's own command, and before systemctl poweroff.
    const batch = r.typed.findIndex((t) => t.startsWith('sh /run/debian-vm-ci/run-3.sh'));
    expect(batch).toBeGreaterThan(r.typed.findIndex((t) => t.startsWith('sh /run/debian-vm-ci/run-2.sh')));
    expect(r.typed.indexOf('systemctl poweroff\n')).toBeGreaterThan(batch);
    expect(r.typed.filter((t) => t.startsWith('sh /run/debian-vm-ci/')).length).toBe(3);
  });

  it('always: the pipeline adds none of its own (goss gathers them after its run)', async () => {
    const r = await run('always', [guestStage('validate', 'fail')]);
    expect(r.result.status).toBe('failed');
    expect(r.diagnostics).toBeUndefined();
    expect(r.stopped).toBe(true);
  });

  it('is named in the error when it is neither always nor failure', async () => {
    await expect(run('sometimes' as never, [])).rejects.toThrow(/diagnostics/);
  });
});
