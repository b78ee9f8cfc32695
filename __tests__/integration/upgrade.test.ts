import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUITE_FLAGS } from '../support/cli-run.js';
import { filesContaining } from '../support/leftovers.js';
import {
  cloneCheckout,
  ensureNoUsernsLauncher,
  ensureRunnerUser,
  existsAsRoot,
  leftovers,
  notOwnedBy,
  readAsRoot,
  removeCheckout,
  root,
  runAs,
  runnerEnv,
  scratchSnapshot,
  type RunnerUser,
} from '../support/runner-user.js';

// The upgrade stage end to end, as GitHub's hosted runners run it: the non-root user with sudo, no user
// namespaces. The example on bookworm (mmdebstrap image with its package, direct kernel boot), upgraded to trixie
// in the booted guest through the run's apt proxy, booted a second time on trixie's kernel under the same console
// watching, goss again with a gossfile of its own. The password comes from the environment, as a CI secret would.
const PASSWORD = 'Upgrade-Test-Secret-41c9';
// A user of its own: this file runs in the long lane beside as-runner.test.ts, whose checks count what its user
// leaves in RUNNER_TEMP and whose first run empties that user's cache.
const UPGRADE_USER = 'dvc-upgrader';

let user: RunnerUser;
let clone: string;
beforeAll(() => {
  user = ensureRunnerUser(UPGRADE_USER);
  ensureNoUsernsLauncher();
  clone = cloneCheckout(user, { nodeModules: 'none' });
}, 15 * 60_000);
const outputDir = (): string => join(user.runnerTemp, 'debian-vm-ci-upgrade');
afterAll(() => {
  // The output dir holds a 3 GiB image; the runner wipes RUNNER_TEMP after each job, here the test does.
  if (user) root(['rm', '-rf', '--one-file-system', outputDir()]);
  removeCheckout(clone);
}, 300_000);

type Stage = { name: string; status: string; seconds: number; summary?: string };

describe(`the upgrade stage, as the non-root user ${UPGRADE_USER} with sudo and no user namespaces`, () => {
  it('upgrades the example from bookworm to trixie, boots it again and runs goss after the upgrade', async () => {
    const dir = outputDir();
    root(['rm', '-rf', '--one-file-system', dir]);
    const before = scratchSnapshot(user);
    const run = await runAs(
      user,
      [
        process.execPath,
        'dist/cli/index.js',
        'run',
        '--output-dir',
        dir,
        ...SUITE_FLAGS,
        '--working-directory',
        'examples/hello',
        '--installer',
        'mmdebstrap',
        // The named shortcut (apt variant, no recommends): fewer packages to upgrade under TCG. What the stage
        // does is the same for any package set; the installer's own configuration is grml-debootstrap.test.ts's.
        '--install-profile',
        'fast',
        '--install-built-packages',
        'true',
        '--release',
        'bookworm',
        '--upgrade-to',
        'trixie',
        '--gossfile-after-upgrade',
        '../../__tests__/fixtures/upgrade/goss-after-upgrade.yaml',
        // The guest's initramfs with the modules its own hardware needs (initramfs-tools' MODULES=dep), set after
        // mmdebstrap built the first one: under TCG, MODULES=most made each of the upgrade's three initramfs runs
        // take about 10 minutes (the whole upgrade 1458 s, measured). A setting of the system under test, not of the action.
        '--installer-args',
        `'--customize-hook=echo MODULES=dep > "$1/etc/initramfs-tools/conf.d/debian-vm-ci-test.conf"'`,
        // The os-release of both systems, read below, comes from the diagnostics before and after the upgrade.
        '--diagnostics',
        'always',
        '--upload-image',
        'never',
      ],
      { cwd: clone, env: runnerEnv(user, { DEBIAN_VM_CI_PASSWORD: PASSWORD }), timeoutSeconds: 50 * 60, noUserns: true },
    );
    const out = run.out;
    expect(run.timedOut, out.slice(-4000)).toBe(false);
    expect(existsAsRoot(join(dir, 'result.json')), out.slice(-4000)).toBe(true);
    const result = JSON.parse(readAsRoot(join(dir, 'result.json'))) as Record<string, unknown>;
    // Nothing left behind, nothing of root's in the output, the password nowhere, whatever the verdict.
    expect(await leftovers(user, before, [dir])).toEqual({ processes: [], mounts: [], scratch: [] });
    expect(notOwnedBy(user, dir), `files in ${dir} not owned by ${user.name}`).toEqual([]);
    expect(existsAsRoot(join(dir, '.work')), 'the working files under the output dir').toBe(false);
    expect(out).not.toContain(PASSWORD);
    expect(filesContaining(dir, PASSWORD)).toEqual([]);
    const status = run.status;
    const stages = result.stages as Stage[];
    // The figures of the note: what each stage took here.
    console.log(`upgrade run: ${stages.map((s) => `${s.name} ${s.seconds}s`).join(', ')}`);
    expect(status, out.slice(-4000)).toBe(0);
    expect(stages.map((s) => `${s.name}:${s.status}`)).toEqual([
      'accel:passed',
      'lint:passed',
      'package:passed',
      'install:passed',
      'boot:passed',
      'validate:passed',
      'lifecycle:skipped',
      'autopkgtest:skipped',
      'upgrade:passed',
      'publish:passed',
    ]);
    const upgrade = result.upgrade as {
      from: string;
      to: string;
      kernel: string;
      upgraded: number;
      bootSeconds: number;
      goss: { tests: number; failures: number; skipped: number };
    };
    expect(upgrade).toMatchObject({ from: 'bookworm', to: 'trixie', goss: { tests: 9, failures: 0, skipped: 0 } });
    expect(upgrade.upgraded).toBeGreaterThan(50);
    expect(upgrade.kernel).toMatch(/^6\.(1[2-9]|[2-9]\d)\./);
    expect(upgrade.bootSeconds).toBeGreaterThan(0);
    // goss before the upgrade is the example's own gossfile, unchanged.
    expect((result.goss as { failures: number }).failures).toBe(0);

    // The second boot was watched like the first: its console follows the first one's power-off in serial.log.
    const serial = readAsRoot(join(dir, 'serial.log'));
    const [first, second] = serial.split('===== debian-vm-ci: second boot, after the upgrade from bookworm to trixie =====');
    expect(second, 'the second boot in serial.log').toBeDefined();
    expect(first).toMatch(/Linux version 6\.1\./);
    expect(second).toMatch(new RegExp(`Linux version ${upgrade.kernel.replace(/[.+]/g, '\\$&')}`));
    expect(second).toMatch(/Debian GNU\/Linux 13 .*ttyS0/);
    expect(out).toMatch(/upgrade: second boot: login prompt after [\d.]+s|upgrade: [\d.]+s login prompt/);

    // The reports: apt's output, the sources as changed, the package lists, goss after the upgrade, the steps.
    for (const f of [
      'upgrade/output.txt',
      'upgrade/sources.txt',
      'upgrade/packages-before.tsv',
      'upgrade/packages-after.tsv',
      'upgrade/goss/goss.json',
      'upgrade/goss/goss.junit.xml',
      'upgrade/goss/goss.tap',
      'upgrade/upgrade.junit.xml',
      'upgrade/upgrade.md',
      'upgrade/diagnostics/os-release.txt',
      'logs/upgrade.log',
    ]) {
      expect(existsAsRoot(join(dir, f)), f).toBe(true);
    }
    expect(readAsRoot(join(dir, 'upgrade/diagnostics/os-release.txt'))).toContain('VERSION_CODENAME=trixie');
    expect(readAsRoot(join(dir, 'diagnostics/os-release.txt'))).toContain('VERSION_CODENAME=bookworm');
    expect(readAsRoot(join(dir, 'upgrade/sources.txt'))).toMatch(/^deb \S+ trixie main/m);
    expect(readAsRoot(join(dir, 'upgrade/packages-after.tsv'))).toMatch(/^hello-dvc\t1\.0\.0$/m);
    const junit = readAsRoot(join(dir, 'upgrade/upgrade.junit.xml'));
    expect(junit).toContain('tests="7" failures="0" errors="0" skipped="0"');
    expect(readAsRoot(join(dir, 'upgrade/goss/goss.junit.xml'))).toContain('name="goss trixie (upgraded from bookworm)"');
    const summary = readAsRoot(join(dir, 'summary.md'));
    expect(summary).toMatch(
      /upgrade bookworm → trixie \*\*passed\*\* \(\d+ packages upgraded, second boot [\d.]+s, goss 9\/9 passed\)/,
    );
    expect(summary).toContain('### goss after the upgrade to trixie');
    // Both guests were powered off cleanly.
    expect(out).toMatch(/upgrade: powering the guest off for the second boot\n.*upgrade: QEMU exited with status 0/);
    expect(out).toMatch(/upgrade: powering the guest off\n.*upgrade: QEMU exited with status 0/);
    // Progress while apt works: a line every 25 packages set up.
    expect(out).toMatch(/upgrade: apt: 25 packages set up \(now /);
  });
});
