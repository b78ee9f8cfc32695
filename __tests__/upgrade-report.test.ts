import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { aptProgress, RUN_IN_GUEST } from '../src/stages/upgrade.js';
import { allSteps, packageChanges, parsePackageList, upgradeToJUnit, upgradeToMarkdown } from '../src/upgrade/report.js';
import { copyGuestFile } from '../src/vm/guest-file.js';

const dir = mkdtempSync(join(tmpdir(), 'dvc-upgrade-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs one of the script's own rewrite functions (its text, cut out of upgrade-in-guest.sh) on a file. */
function rewrite(
  fn: 'rewrite_list' | 'rewrite_sources',
  text: string,
  from = 'bookworm',
  to = 'trixie',
): { status: number; text: string } {
  const body = new RegExp(`^${fn}\\(\\) \\{\\n[\\s\\S]*?\\n\\}$`, 'm').exec(RUN_IN_GUEST)?.[0];
  if (!body) throw new Error(`${fn} not found in upgrade-in-guest.sh`);
  const file = join(dir, `${fn}-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, text);
  let status = 0;
  try {
    execFileSync('sh', ['-c', `${body}\nfrom=$1 to=$2\n${fn} "$3"`, 'sh', from, to, file]);
  } catch (e) {
    status = (e as { status: number }).status;
  }
  return { status, text: readFileSync(`${file}.dvc-new`, 'utf8') };
}

describe('the upgrade in the guest: apt sources', () => {
  it('one-line sources: the suite field of the release and its pockets, nothing else', () => {
    const r = rewrite(
      'rewrite_list',
      [
        '# bookworm sources',
        'deb http://mirror.example/debian bookworm main contrib',
        'deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian-bookworm bookworm-updates main',
        'deb-src http://mirror.example/debian bookworm-security main',
        'deb http://mirror.example/debian bookwormish main',
        'deb http://other.example/x sid main',
        '',
      ].join('\n'),
    );
    expect(r.status).toBe(0);
    expect(r.text.split('\n')).toEqual([
      '# bookworm sources',
      'deb http://mirror.example/debian trixie main contrib',
      'deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian-bookworm trixie-updates main',
      'deb-src http://mirror.example/debian trixie-security main',
      'deb http://mirror.example/debian bookwormish main',
      'deb http://other.example/x sid main',
      '',
    ]);
  });

  it('deb822 sources: every word of Suites that names the release', () => {
    const r = rewrite(
      'rewrite_sources',
      'Types: deb\nURIs: http://mirror.example/debian-bookworm\nsuites: bookworm bookworm-updates sid\nComponents: main\n',
    );
    expect(r.status).toBe(0);
    expect(r.text).toBe(
      'Types: deb\nURIs: http://mirror.example/debian-bookworm\nsuites: trixie trixie-updates sid\nComponents: main\n',
    );
  });

  it('a file that does not name the release is reported unchanged (status 1)', () => {
    expect(rewrite('rewrite_list', 'deb http://mirror.example/debian trixie main\n').status).toBe(1);
    expect(rewrite('rewrite_sources', 'Types: deb\nSuites: trixie\n').status).toBe(1);
  });
});

describe('the upgrade report', () => {
  it('reads dpkg-query lines and nothing else; compares two lists', () => {
    const before = parsePackageList('bash\t5.2.15-2+b7\nlibc6\t2.36-9\nold-pkg\t1.0\ngarbage line\n\tx\n');
    const after = parsePackageList('bash\t5.2.37-2\nlibc6\t2.36-9\nnew-pkg\t2.0\n');
    expect([...before.keys()]).toEqual(['bash', 'libc6', 'old-pkg']);
    expect(packageChanges(before, after)).toEqual({ upgraded: ['bash'], added: ['new-pkg'], removed: ['old-pkg'] });
  });

  it('JUnit lists every step: passed, the failure with its text, the rest skipped', () => {
    const steps = allSteps([
      { name: 'apt sources' },
      { name: 'apt-get update' },
      { name: 'apt-get full-upgrade', failure: 'apt <failed>', body: 'E: x & y' },
    ]);
    expect(steps.map((s) => s.name)).toEqual([
      'apt sources',
      'apt-get update',
      'apt-get full-upgrade',
      'dpkg --audit',
      'kernel',
      'second boot',
      'goss after the upgrade',
    ]);
    const xml = upgradeToJUnit(steps, 'upgrade bookworm → trixie', 12.5);
    expect(xml).toContain('tests="7" failures="1" errors="0" skipped="4" time="12.500"');
    expect(xml).toContain('<failure message="apt &lt;failed&gt;">E: x &amp; y</failure>');
    expect(xml.match(/<skipped\/>/g)).toHaveLength(4);
    // Well formed, checked by a real XML parser.
    execFileSync('python3', ['-c', 'import sys, xml.dom.minidom; xml.dom.minidom.parseString(sys.stdin.read())'], { input: xml });
    const md = upgradeToMarkdown(steps, 'upgrade bookworm → trixie', { upgraded: ['a', 'b'], added: ['c'], removed: ['d'] });
    // What the guest wrote cannot start HTML in the job summary.
    expect(md).toContain('| ❌ | apt-get full-upgrade | apt &lt;failed&gt; |');
    expect(md).toContain('| ⏭️ | second boot | not run |');
    expect(md).toContain('apt changed **2** package versions, installed **1** new and removed **1** (d).');
  });
});

describe('copyGuestFile', () => {
  it('copies a regular file up to the limit; refuses a link, a directory, a file too large', () => {
    writeFileSync(join(dir, 'kernel'), Buffer.alloc(3000, 7));
    expect(copyGuestFile(join(dir, 'kernel'), join(dir, 'kernel.copy'), 3000)).toBe(3000);
    expect(readFileSync(join(dir, 'kernel.copy')).equals(Buffer.alloc(3000, 7))).toBe(true);
    expect(() => copyGuestFile(join(dir, 'kernel'), join(dir, 'kernel.small'), 2999)).toThrow(
      /3000 bytes, more than the 2999 allowed/,
    );
    symlinkSync('/etc/shadow', join(dir, 'link'));
    expect(() => copyGuestFile(join(dir, 'link'), join(dir, 'link.copy'), 1e6)).toThrow(/no file .*ELOOP/);
    expect(() => copyGuestFile(dir, join(dir, 'dir.copy'), 1e6)).toThrow(/not a regular file/);
    // The destination is never written through: one that exists is an error.
    expect(() => copyGuestFile(join(dir, 'kernel'), join(dir, 'kernel.copy'), 1e6)).toThrow(/EEXIST/);
  });
});

describe('aptProgress', () => {
  it("turns every 25th of dpkg's 'Setting up' lines into a progress line, and nothing else", () => {
    const progress = aptProgress(2);
    const lines = [
      'Unpacking libc6:amd64 (2.41-12) over (2.36-9) ...',
      'Setting up libc6:amd64 (2.41-12) ...',
      'Setting up bash (5.2.37-2) ...',
    ];
    expect(lines.map(progress)).toEqual([undefined, undefined, 'apt: 2 packages set up (now bash 5.2.37-2)']);
    expect(aptProgress()('Setting up x (1) ...')).toBeUndefined();
  });
});
