import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseContext } from './support/parse-context.js';
import { parseConfig } from '../src/config.js';
import { cliInputs } from '../src/entry.js';
import { directBootAppend, mmdebstrapArgv } from '../src/install/mmdebstrap.js';

const project = mkdtempSync(join(tmpdir(), 'dvc-mmdebstrap-argv-test-'));
writeFileSync(join(project, 'goss.yaml'), 'file: {}\n');
afterAll(() => rmSync(project, { recursive: true, force: true }));

function argv(flags: Record<string, string>): string[] {
  const config = parseConfig(
    cliInputs(Object.entries({ installer: 'mmdebstrap', ...flags }).flatMap(([k, v]) => [`--${k}`, v])),
    parseContext(project),
  );
  return mmdebstrapArgv(config, { files: '/w/files', debs: [], target: '/w/root.tar', bootDir: '/w/boot' });
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
