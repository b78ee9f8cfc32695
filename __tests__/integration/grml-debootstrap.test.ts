import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT as root } from '../support/cli-run.js';
import { PIPELINE_PASSWORD, runPipeline } from '../support/pipeline-run.js';

// grml-debootstrap --vmfile end to end: the builder VM (QEMU/TCG here) installs, the test VM boots the image
// from its own GRUB, goss validates it. The longest test of the suite: it runs in its own lane (vitest.config.ts).
const work = mkdtempSync(join(tmpdir(), 'dvc-grml-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('grml-debootstrap end to end', () => {
  // The defaults (install-profile: default): grml-debootstrap's own package list, kernel and variant, as a user gets
  // them. Under TCG here that is 1231-1475 s for the install stage (docs/grml-debootstrap.md), about a fifth more
  // than install-profile fast, and it makes this lane the suite's longest.
  it('installs with grml-debootstrap --vmfile in the builder VM (QEMU/TCG here) with the package built by the run, boots the image from its own GRUB and validates it', () => {
    const { status, result, out, dir } = runPipeline(
      work,
      [
        '--working-directory',
        'examples/hello',
        '--lint',
        'false',
        '--install-built-packages',
        'true',
        '--gossfile',
        join(root, '__tests__/fixtures/pipeline/grml-goss.yaml'),
        // dpkg -l of the installed system, read below, comes from the diagnostics.
        '--diagnostics',
        'always',
        '--upload-image',
        'never',
      ],
      // fast took 21 min on the 2-core development machine and over 30 on a CI machine of the same kind (its install
      // alone: 29 min): every process start costs 30-40 ms under TCG and the installer starts many thousands.
      55,
    );
    expect(status, out.slice(-4000)).toBe(0);
    expect(result.status).toBe('passed');
    expect(out).toMatch(/grml-debootstrap 0\.\d+/);
    const serial = readFileSync(join(dir, 'serial.log'), 'utf8');
    // grml-debootstrap's GRUB writes to the VGA console only, and its kernel command line has quiet:
    // the serial log starts at userspace (fsck of /dev/vda1) and ends at the login prompt.
    expect(serial).toMatch(/\/dev\/vda1: clean/);
    expect(serial).toMatch(/login: /);
    expect((result.goss as { failures: number }).failures).toBe(0);
    expect(out).toMatch(/install-profile: default/);
    // Everything the package list the job handed grml-debootstrap names is installed.
    const listed = readFileSync(join(dir, 'logs/installer-packages.txt'), 'utf8')
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean);
    expect(listed.length).toBeGreaterThanOrEqual(10); // grml-debootstrap's own /etc/debootstrap/packages
    const dpkg = readFileSync(join(dir, 'diagnostics/dpkg-l.txt'), 'utf8');
    const installed = new Set([...dpkg.matchAll(/^ii {2}(\S+?)(?::\S+)? /gm)].map((m) => m[1]));
    expect(listed.filter((p) => !installed.has(p))).toEqual([]);
    // install-built-packages: the package this run built is installed, by apt in grml-debootstrap's chroot stage.
    expect(dpkg).toMatch(/^ii {2}hello-dvc +1\.0\.0 /m);
    expect(readFileSync(join(dir, 'logs/install.log'), 'utf8')).toMatch(
      /I: installing the packages built by this run: hello-dvc_1\.0\.0_all\.deb/,
    );
    // The image holds the password's hash only: grml-debootstrap's own copy of it in the target
    // (/etc/debootstrap/variables, deleted) was still in the free blocks before they were discarded.
    const image = join(dir, 'image/qemu.img');
    expect(statSync(image).size).toBeGreaterThan(0);
    const found = spawnSync('grep', ['-c', '-a', '-F', PIPELINE_PASSWORD, image], { encoding: 'utf8', timeout: 300_000 });
    expect(found.stdout.trim(), 'the plaintext password is in image/qemu.img').toBe('0');
    expect(readFileSync(join(dir, 'logs/install.log'), 'utf8')).toMatch(/: [\d.]+ \S+ \(\d+ bytes\) trimmed/);
  });
});
