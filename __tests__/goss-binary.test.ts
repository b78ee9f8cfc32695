import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gossDownloadUrl, parseChecksumFile } from '../src/goss/binary.js';
import { privateAptOptions, upstreamVersion } from '../src/goss/debian-apt.js';
import { elfArchitecture, requiredGlibc } from '../src/goss/elf.js';

const HASH = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);

describe('parseChecksumFile', () => {
  it.each([
    ['sha256sum output as goss publishes it', `${HASH}  goss-linux-amd64\n`, HASH],
    ['a name with the release/ prefix of older goss Makefiles', `${HASH}  release/goss-linux-amd64\n`, HASH],
    ['binary-mode marker', `${HASH} *goss-linux-amd64\n`, HASH],
    ['upper-case hex, CRLF', `${HASH.toUpperCase()}  goss-linux-amd64\r\n`, HASH],
    ['a bare hash', `${HASH}\n`, HASH],
    ['the right line of several', `${OTHER}  goss-linux-arm64\n${HASH}  goss-linux-amd64\n`, HASH],
    ['only another asset (wrong URL template)', `${OTHER}  goss-linux-arm64\n`, undefined],
    ['an HTML error page', '<html>Not Found</html>', undefined],
    ['a short hash', 'abc123  goss-linux-amd64', undefined],
  ])('%s', (_what, text, want) => {
    expect(parseChecksumFile(text, 'goss-linux-amd64')).toBe(want);
  });
});

describe('gossDownloadUrl', () => {
  it('fills every placeholder', () => {
    expect(gossDownloadUrl('https://example.org/v{version}/goss-linux-{arch}?v={version}', '0.4.9', 'arm64')).toBe(
      'https://example.org/v0.4.9/goss-linux-arm64?v=0.4.9',
    );
  });
});

describe('upstreamVersion', () => {
  it.each([
    ['0.4.9-2+b3', '0.4.9'],
    ['0.4.10-1', '0.4.10'],
    ['1:0.4.9-1', '0.4.9'],
    ['0.4.9+ds1-1', '0.4.9'],
    ['0.4.9', '0.4.9'],
  ])('%s -> %s', (debian, upstream) => {
    expect(upstreamVersion(debian)).toBe(upstream);
  });
});

describe('privateAptOptions', () => {
  it('points every list, cache, state and source file into the private root', () => {
    const options = privateAptOptions('/tmp/x', 'arm64');
    const settings = Object.fromEntries(
      options.filter((o, i) => options[i - 1] === '-o').map((o) => o.split('=', 2) as [string, string]),
    );
    expect(settings).toMatchObject({
      'Dir::Etc::sourcelist': '/tmp/x/etc/sources.list.d/goss.sources',
      'Dir::Etc::sourceparts': '-',
      'Dir::State': '/tmp/x/state',
      'Dir::State::status': '/tmp/x/state/status',
      'Dir::Cache': '/tmp/x/cache',
      'APT::Architecture': 'arm64',
      'APT::Architectures': 'arm64',
    });
    expect(settings['Dir::Etc::preferencesparts']).toMatch(/^\/tmp\/x\//);
  });
});

describe('binary inspection', () => {
  const dir = mkdtempSync(join(tmpdir(), 'goss-binary-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const elf = (machine: number, extra = ''): string => {
    const header = Buffer.alloc(64);
    header.writeUInt32BE(0x7f454c46, 0);
    header[4] = 2; // 64-bit
    header[5] = 1; // little endian
    header.writeUInt16LE(machine, 18);
    const file = join(dir, `elf-${machine}-${extra.length}`);
    writeFileSync(file, Buffer.concat([header, Buffer.from(extra, 'latin1')]));
    return file;
  };

  it.each([
    [62, 'amd64'],
    [183, 'arm64'],
    [40, undefined],
  ])('e_machine %i is %s', (machine, arch) => {
    expect(elfArchitecture(elf(machine))).toBe(arch);
  });

  it('rejects a script and a missing file', () => {
    const script = join(dir, 'script');
    writeFileSync(script, '#!/bin/sh\necho goss version v0.4.9\n');
    expect(elfArchitecture(script)).toBeUndefined();
    expect(elfArchitecture(join(dir, 'missing'))).toBeUndefined();
  });

  it('finds the newest glibc symbol version, none in a static binary', () => {
    expect(requiredGlibc(elf(62, '\0GLIBC_2.3.4\0GLIBC_2.34\0GLIBC_2.32\0'))).toBe('2.34');
    expect(requiredGlibc(elf(62, 'Go build ID'))).toBeUndefined();
  });
});
