import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/cli-run.js';
import { runPipeline } from '../support/pipeline-run.js';

// The upgrade stage end to end: the example on bookworm (mmdebstrap image with its package, direct kernel boot),
// upgraded to trixie in the booted guest through the run's apt proxy, booted a second time on trixie's kernel
// under the same console watching, goss again with a gossfile of its own.
const work = mkdtempSync(join(tmpdir(), 'dvc-upgrade-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Stage = { name: string; status: string; seconds: number; summary?: string };

describe('the upgrade stage', () => {
  it('upgrades the example from bookworm to trixie, boots it again and runs goss after the upgrade', () => {
    const project = join(work, 'hello');
    cpSync(join(ROOT, 'examples/hello'), project, { recursive: true });
    cpSync(join(ROOT, '__tests__/fixtures/upgrade/goss-after-upgrade.yaml'), join(project, 'goss-after-upgrade.yaml'));
    const { status, out, result, dir } = runPipeline(
      work,
      [
        '--working-directory',
        project,
        '--installer',
        'mmdebstrap',
        '--install-built-packages',
        'true',
        '--release',
        'bookworm',
        '--upgrade-to',
        'trixie',
        '--gossfile-after-upgrade',
        'goss-after-upgrade.yaml',
        // The guest's initramfs with the modules its own hardware needs (initramfs-tools' MODULES=dep), set after
        // mmdebstrap built the first one: under TCG, MODULES=most made each of the upgrade's three initramfs runs
        // take about 10 minutes (the whole upgrade 1458 s, measured). A setting of the system under test, not of the action.
        '--installer-args',
        `'--customize-hook=echo MODULES=dep > "$1/etc/initramfs-tools/conf.d/debian-vm-ci-test.conf"'`,
        '--upload-image',
        'never',
      ],
      50,
    );
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
    const serial = readFileSync(join(dir, 'serial.log'), 'utf8');
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
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
    expect(readFileSync(join(dir, 'upgrade/diagnostics/os-release.txt'), 'utf8')).toContain('VERSION_CODENAME=trixie');
    expect(readFileSync(join(dir, 'diagnostics/os-release.txt'), 'utf8')).toContain('VERSION_CODENAME=bookworm');
    expect(readFileSync(join(dir, 'upgrade/sources.txt'), 'utf8')).toMatch(/^deb \S+ trixie main/m);
    expect(readFileSync(join(dir, 'upgrade/packages-after.tsv'), 'utf8')).toMatch(/^hello-dvc\t1\.0\.0$/m);
    const junit = readFileSync(join(dir, 'upgrade/upgrade.junit.xml'), 'utf8');
    expect(junit).toContain('tests="7" failures="0" errors="0" skipped="0"');
    expect(readFileSync(join(dir, 'upgrade/goss/goss.junit.xml'), 'utf8')).toContain(
      'name="goss trixie (upgraded from bookworm)"',
    );
    const summary = readFileSync(join(dir, 'summary.md'), 'utf8');
    expect(summary).toMatch(
      /upgrade bookworm → trixie \*\*passed\*\* \(\d+ packages upgraded, second boot [\d.]+s, goss 9\/9 passed\)/,
    );
    expect(summary).toContain('### goss after the upgrade to trixie');
    // Both guests were powered off cleanly.
    expect(out).toMatch(/upgrade: powering the guest off for the second boot\n.*upgrade: QEMU exited with status 0/);
    expect(out).toMatch(/upgrade: powering the guest off\n.*upgrade: QEMU exited with status 0/);
  });
});
