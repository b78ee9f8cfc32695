import { mmdebstrapPhases } from '../src/host/mmdebstrap.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseContext } from './support/parse-context.js';
import { parseConfig } from '../src/config.js';
import { cliInputs } from '../src/entry.js';
import { directBootAppend, MAINTAINER_ROOT, mmdebstrapArgv } from '../src/install/mmdebstrap.js';

const project = mkdtempSync(join(tmpdir(), 'dvc-mmdebstrap-argv-test-'));
writeFileSync(join(project, 'goss.yaml'), 'file: {}\n');
afterAll(() => rmSync(project, { recursive: true, force: true }));

function argv(flags: Record<string, string>, more: { debs?: string[]; unshare?: boolean } = {}): string[] {
  const config = parseConfig(
    cliInputs(Object.entries({ installer: 'mmdebstrap', ...flags }).flatMap(([k, v]) => [`--${k}`, v])),
    parseContext(project),
  );
  return mmdebstrapArgv(config, { files: '/w/files', debs: [], target: '/w/root.tar', bootDir: '/w/boot', ...more });
}

describe('the mmdebstrap command line', () => {
  it('takes installer-args as mmdebstrap options, one argument per word, before the suite and target', () => {
    const a = argv({ 'installer-args': `--include=vim --essential-hook='echo "a b"'` });
    const at = a.indexOf('--include=vim');
    expect(at).toBeGreaterThan(0);
    expect(a.slice(at, at + 2)).toEqual(['--include=vim', '--essential-hook=echo "a b"']);
    expect(a.slice(-3)).toEqual(['trixie', '/w/root.tar', 'http://mirror.example/debian']);
  });

  it('puts no input into the text of its own hooks', () => {
    const a = argv({ hostname: 'host-x1', packages: 'vim', 'installer-args': '--variant=minbase' });
    const hooks = a.filter((w) => w.startsWith('--customize-hook='));
    expect(hooks.length).toBeGreaterThan(5);
    for (const h of hooks) expect(h).not.toMatch(/host-x1|vim|minbase/);
  });
});

describe('the built packages in the mmdebstrap image', () => {
  it('are installed in unshare mode when asked, and the hook that installs them prints who root is there first', () => {
    const debs = ['/out/packages/hello-dvc_1.0.0_all.deb'];
    const contained = argv({}, { debs, unshare: true });
    expect(contained[1]).toBe('--mode=unshare');
    const install = contained.find((w) => w.includes('/tmp/hello-dvc_1.0.0_all.deb'));
    // --allow-downgrades: the built package is the one under test, even when the release has a newer version.
    expect(install).toBe(
      '--customize-hook=chroot "$1" sh -c "cat /proc/self/uid_map && apt-get install -y --allow-downgrades /tmp/hello-dvc_1.0.0_all.deb && rm -f /tmp/*.deb"',
    );
    // Without built packages, or when the host has no user namespace for this user: mmdebstrap's own mode choice.
    expect(argv({}, { debs })).not.toContain('--mode=unshare');
    expect(argv({}).some((w) => w.includes('uid_map'))).toBe(false);
  });

  it('tell a user namespace from the host by the uid map their root has', () => {
    // As printed by cat /proc/self/uid_map in mmdebstrap's unshare mode as user runner, and in root mode.
    expect(MAINTAINER_ROOT.exec('         0     100000      65536')?.[1]).toBe('100000');
    expect(MAINTAINER_ROOT.exec('         0          0 4294967295')?.[1]).toBe('0');
    expect(MAINTAINER_ROOT.exec('I: running --customize-hook in shell: sh -c \'chroot "$1" sh -c "cat …"\'')).toBeNull();
  });
});

describe('the direct-boot kernel command line', () => {
  const config = (architecture: string) =>
    parseConfig(
      cliInputs(['--installer', 'mmdebstrap', '--architecture', architecture, '--firmware', 'uefi']),
      parseContext(project),
    );

  it("puts the architecture's serial console last, so that it is /dev/console", () => {
    expect(directBootAppend(config('amd64'), 'amd64')).toBe('root=/dev/vda rw net.ifnames=0 console=tty0 console=ttyS0,115200');
    expect(directBootAppend(config('arm64'), 'arm64')).toBe('root=/dev/vda rw net.ifnames=0 console=tty0 console=ttyAMA0,115200');
  });

  it("gives systemd 300 s for devices only when the guest's CPU is another architecture's, emulated", () => {
    expect(directBootAppend(config('arm64'), 'amd64')).toBe(
      'root=/dev/vda rw net.ifnames=0 console=tty0 console=ttyAMA0,115200 systemd.default_device_timeout_sec=300',
    );
    expect(directBootAppend(config('amd64'), 'arm64')).toMatch(/console=ttyS0,115200 systemd\.default_device_timeout_sec=300$/);
  });
});

describe("mmdebstrap's phases as progress", () => {
  it('reports each phase once, in order, and leaves out the chatter', () => {
    const said: string[] = [];
    const phases = mmdebstrapPhases((m) => said.push(m));
    for (const line of [
      'I: automatically chose mode: root',
      'I: using /tmp/mmdebstrap.abc as tempdir',
      'I: running apt-get update...',
      'I: downloading packages with apt...',
      'I: extracting archives...',
      'I: extracting archives...',
      'Get:1 http://127.0.0.1:4000/debian trixie/main arm64 libc6 arm64 2.41-12 [2,700 kB]',
      'I: installing remaining packages inside the chroot...',
      "I: running --customize-hook in shell: sh -c '…'",
      'I: success in 812.3 seconds',
    ])
      phases(line);
    expect(said).toEqual([
      'mmdebstrap: downloading packages with apt',
      'mmdebstrap: extracting archives',
      'mmdebstrap: installing remaining packages inside the chroot',
    ]);
  });
});
