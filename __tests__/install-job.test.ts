import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig, type ParseContext } from '../src/config.js';
import { cliInputs } from '../src/entry.js';
import { grmlBootAppend, grmlPackageList, jobParams } from '../src/install/builder-install.js';

const project = mkdtempSync(join(tmpdir(), 'dvc-install-job-test-'));
writeFileSync(join(project, 'goss.yaml'), 'file: {}\n');
afterAll(() => rmSync(project, { recursive: true, force: true }));

const ctx: ParseContext = {
  cwd: project,
  defaultOutputDir: join(project, 'out'),
  hostMirror: 'http://mirror.example/debian',
  hostArchitecture: 'amd64',
  cpus: 2,
  randomPassword: () => 'generated-password',
};

function config(flags: Record<string, string>) {
  return parseConfig(cliInputs(Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v])), ctx);
}

describe('the grml-debootstrap job in the builder', () => {
  it('hands grml-debootstrap a lean package list whose DHCP client exists in the release', () => {
    // unstable dropped isc-dhcp-client; ifupdown falls back to dhcpcd there.
    for (const release of ['sid', 'unstable', 'forky', 'testing']) {
      const list = grmlPackageList(config({ release }));
      expect(list, release).toContain('dhcpcd-base');
      expect(list, release).not.toContain('isc-dhcp-client');
    }
    for (const release of ['bookworm', 'trixie', 'stable']) {
      expect(grmlPackageList(config({ release })), release).toContain('isc-dhcp-client');
    }
    expect(grmlPackageList(config({ packages: 'curl, jq' })).slice(-2)).toEqual(['curl', 'jq']);
    expect(grmlPackageList(config({ architecture: 'arm64', firmware: 'uefi' }))[0]).toBe('linux-image-arm64');
  });

  it('puts the serial console last on the kernel command line, so that it is /dev/console', () => {
    expect(grmlBootAppend(config({}))).toMatch(/console=tty0 console=ttyS0,115200/);
    expect(grmlBootAppend(config({ architecture: 'arm64', firmware: 'uefi' }))).toMatch(/console=ttyAMA0,115200/);
  });

  it('writes job parameters that bash reads back unchanged, with no password among them', () => {
    const params = jobParams(
      config({ release: 'sid', firmware: 'uefi', 'check-valid-until': 'false', hostname: 'ci-vm', password: 's3cr3t pw' }),
      'http://10.0.2.2:3142/',
    );
    // job.sh sources the file with bash: every value comes back as it was.
    const file = join(project, 'params');
    writeFileSync(file, params);
    const sourced = spawnSync(
      'bash',
      ['-c', '. "$1"; printf "%s|" "$RELEASE" "$VMEFI" "$CHECK_VALID_UNTIL" "$PROXY" "$BOOTAPPEND" "$HOSTNAME"', 'sh', file],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(sourced.error).toBeUndefined();
    expect(sourced.stdout).toBe('sid|1|0|http://10.0.2.2:3142/|console=tty0 console=ttyS0,115200 net.ifnames=0|ci-vm|');
    expect(params).not.toContain('s3cr3t');
  });
});
