import { describe, expect, it } from 'vitest';
import { addAutomatedBuildEntry, automatedBuildEntry, changelogDate, parseChangelogHead } from '../src/package/changelog.js';

const HELLO = `hello-dvc (1.0.0) unstable; urgency=medium

  * Initial release.

 -- debian-vm-ci developers <dev@debian-vm-ci.invalid>  Sat, 28 Nov 2026 04:00:00 +0000
`;

describe('parseChangelogHead', () => {
  it.each([
    [HELLO, { source: 'hello-dvc', version: '1.0.0', distribution: 'unstable' }],
    [
      'grml-debootstrap (0.130) unstable; urgency=medium\n',
      { source: 'grml-debootstrap', version: '0.130', distribution: 'unstable' },
    ],
    [
      'foo (1:2.3-4~bpo12+1) bookworm-backports; urgency=low\n',
      { source: 'foo', version: '1:2.3-4~bpo12+1', distribution: 'bookworm-backports' },
    ],
    ['\nlibx11 (2:1.8.4-2) UNRELEASED; urgency=medium\n', { source: 'libx11', version: '2:1.8.4-2', distribution: 'UNRELEASED' }],
  ])('reads the first entry line of %j', (text, head) => {
    expect(parseChangelogHead(text)).toEqual(head);
  });

  it.each(['', 'not a changelog\n', 'Foo (1.0) unstable; urgency=low\n', 'foo 1.0 unstable; urgency=low\n'])(
    'rejects %j',
    (text) => {
      expect(() => parseChangelogHead(text)).toThrow(/debian\/changelog does not start with an entry line/);
    },
  );
});

describe('changelogDate', () => {
  it.each([
    ['2026-11-28T04:00:00Z', 'Sat, 28 Nov 2026 04:00:00 +0000'],
    ['2027-01-03T23:59:09Z', 'Sun, 03 Jan 2027 23:59:09 +0000'],
  ])('formats %s as dch does', (iso, text) => {
    expect(changelogDate(new Date(iso))).toBe(text);
  });
});

describe('automated build entry', () => {
  const date = new Date('2026-11-28T12:34:56Z');

  it('is a dch-style entry with the suffixed version, the distribution and the fixed message', () => {
    const head = { source: 'hello-dvc', version: '1.0.0', distribution: 'unstable' };
    expect(automatedBuildEntry(head, '+autobuild42', 'trixie', date)).toBe(
      'hello-dvc (1.0.0+autobuild42) trixie; urgency=medium\n' +
        '\n' +
        '  * Automated build by debian-vm-ci\n' +
        '\n' +
        ' -- debian-vm-ci <debian-vm-ci@users.noreply.github.com>  Sat, 28 Nov 2026 12:34:56 +0000\n' +
        '\n',
    );
  });

  it('goes on top of the existing changelog and keeps epochs', () => {
    const { text, version } = addAutomatedBuildEntry(
      'foo (1:2.0-1) unstable; urgency=low\n\n  * x\n',
      '~ci1',
      'UNRELEASED',
      date,
    );
    expect(version).toBe('1:2.0-1~ci1');
    expect(text.startsWith('foo (1:2.0-1~ci1) UNRELEASED; urgency=medium\n')).toBe(true);
    expect(text.endsWith('\n\nfoo (1:2.0-1) unstable; urgency=low\n\n  * x\n')).toBe(true);
  });
});
