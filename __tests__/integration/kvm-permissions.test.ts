import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cloneCheckout,
  ensureRunnerUser,
  existsAsRoot,
  leftovers,
  notOwnedBy,
  readAsRoot,
  removeCheckout,
  root,
  runAs,
  runAsSync,
  scratchSnapshot,
  type RunnerUser,
} from '../support/runner-user.js';

/*
 * GitHub's x86_64 runners have /dev/kvm as root:kvm 0660 and `runner` is not in group kvm: the accel
 * stage, run by that user, must open it up itself (udev rule, then chmod through sudo). This machine's
 * /dev/kvm is made to look like theirs for the test and put back afterwards. Whether KVM is usable here
 * does not matter (it is not: guests crawl); only that the user can open the device afterwards.
 */

const KVM = '/dev/kvm';
const RULE = '/etc/udev/rules.d/99-debian-vm-ci-kvm.rules';

let user: RunnerUser;
let clone: string;
let skipReason: string | undefined;
let original: { uid: number; gid: number; mode: number } | undefined;
let ruleExisted = true;
let groupCreated = false;

const userOpensKvm = (): { status: number; out: string } =>
  runAsSync(user, ['sh', '-c', `exec 3<>${KVM}`], { timeoutSeconds: 30 });

beforeAll(() => {
  user = ensureRunnerUser();
  if (!existsSync(KVM)) {
    skipReason = `this host has no ${KVM}`;
    return;
  }
  const st = statSync(KVM);
  ruleExisted = existsAsRoot(RULE);
  if (spawnSync('getent', ['group', 'kvm'], { stdio: 'ignore' }).status !== 0) {
    root(['groupadd', '--system', 'kvm']);
    groupCreated = true;
  }
  try {
    root(['chown', 'root:kvm', KVM]);
    original = { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
    root(['chmod', '0660', KVM]);
  } catch (e) {
    skipReason = `root cannot change ${KVM} here (${(e as Error).message.split('\n')[0]})`;
    return;
  }
  const groups = spawnSync('id', ['-nG', user.name], { encoding: 'utf8' }).stdout.split(/\s+/);
  if (groups.includes('kvm')) skipReason = `${user.name} is in group kvm: a root:kvm 0660 ${KVM} proves nothing`;
  else clone = cloneCheckout(user, { nodeModules: 'none' });
}, 10 * 60_000);

afterAll(() => {
  if (original) {
    root(['chown', `${original.uid}:${original.gid}`, KVM]);
    root(['chmod', original.mode.toString(8), KVM]);
  }
  if (!ruleExisted) root(['rm', '-f', RULE]);
  if (groupCreated) root(['groupdel', 'kvm']);
  removeCheckout(clone);
});

describe('/dev/kvm as GitHub runners have it (root:kvm 0660, the user not in group kvm)', () => {
  it('the accel stage run by the non-root user makes /dev/kvm usable for that user', async ({ skip }) => {
    if (skipReason) {
      // A skip must be seen: a host where this cannot run says why in the test output, not just in a count.
      console.warn(`kvm-permissions: SKIPPED: ${skipReason}`);
      skip(skipReason);
    }
    expect(userOpensKvm().status, `precondition: ${user.name} must not open a root:kvm 0660 ${KVM}`).not.toBe(0);
    const out = join(clone, 'debian-vm-ci-out-kvm');
    root(['rm', '-rf', out]);
    const before = scratchSnapshot(user);
    const run = await runAs(
      user,
      [
        'node',
        'dist/cli/index.js',
        'run',
        '--install',
        'false',
        '--build-package',
        'false',
        '--lint',
        'false',
        '--output-dir',
        out,
      ],
      { cwd: clone, timeoutSeconds: 10 * 60 },
    );
    console.log(`kvm-permissions: accel as ${user.name}: exit ${run.status} in ${run.seconds}s`);
    expect(run.timedOut, run.out).toBe(false);
    expect(run.out).toMatch(/\/dev\/kvm is not accessible/);
    const file = join(out, 'result.json');
    expect(existsAsRoot(file), run.out.slice(-3000)).toBe(true);
    const result = JSON.parse(readAsRoot(file)) as { stages: { name: string; status: string; error?: string }[] };
    expect(
      result.stages.find((s) => s.name === 'accel'),
      run.out.slice(-3000),
    ).toMatchObject({ status: 'passed' });
    expect(run.status, run.out.slice(-3000)).toBe(0);
    const opened = userOpensKvm();
    expect(opened.status, `${user.name} opening ${KVM} read-write after the accel stage: ${opened.out}`).toBe(0);
    expect(notOwnedBy(user, out)).toEqual([]);
    expect(await leftovers(user, before, [out])).toEqual({ processes: [], mounts: [], scratch: [] });
  });
});
