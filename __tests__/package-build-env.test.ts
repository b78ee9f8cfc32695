import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT } from './support/cli-run.js';
import {
  buildArchitecture,
  BUILD_SCRIPT,
  BUILD_USER,
  CLEAN_PATH,
  FAILED_PREFIX,
  MILESTONE_PREFIX,
  buildArgv,
  buildEnvDir,
  buildEnvKey,
  buildEnvironment,
  createEnvArgv,
  pruneBuildEnvs,
} from '../src/package/build-env.js';

const MIRROR = 'http://mirror.example/debian';

describe('buildArchitecture', () => {
  const control = (...archs: string[]): string =>
    [
      'Source: x\nBuild-Depends: debhelper-compat (= 13)\n',
      ...archs.map((a, i) => `Package: x${i}\nArchitecture: ${a}\nDescription: d\n more\n`),
    ].join('\n');

  it('builds a source of Architecture: all packages only on the host, whatever the image', () => {
    expect(buildArchitecture(control('all'), 'arm64', 'amd64')).toBe('amd64');
    expect(buildArchitecture(control('all', 'all'), 'arm64', 'amd64')).toBe('amd64');
    // The example project's own control file.
    expect(buildArchitecture(readFileSync(join(ROOT, 'examples/hello/debian/control'), 'utf8'), 'arm64', 'amd64')).toBe('amd64');
  });

  it("builds anything else on the image's architecture", () => {
    expect(buildArchitecture(control('any'), 'arm64', 'amd64')).toBe('arm64');
    expect(buildArchitecture(control('all', 'any'), 'arm64', 'amd64')).toBe('arm64');
    expect(buildArchitecture(control('amd64 arm64'), 'arm64', 'amd64')).toBe('arm64');
    expect(buildArchitecture(control('linux-any'), 'arm64', 'amd64')).toBe('arm64');
    // No binary stanza, or a host of an architecture we do not build: the image's.
    expect(buildArchitecture('Source: x\n', 'arm64', 'amd64')).toBe('arm64');
    expect(buildArchitecture(control('all'), 'arm64', undefined)).toBe('arm64');
    // Field names are case-insensitive in deb822.
    expect(buildArchitecture('Source: x\n\npackage: y\narchitecture: all\n', 'arm64', 'amd64')).toBe('amd64');
  });
});

describe('buildEnvKey', () => {
  const base = { release: 'trixie', architecture: 'amd64', mirror: MIRROR, now: new Date('2026-11-28T04:00:00Z') };

  it('names release, architecture and ISO week, and hashes the mirror instead of naming it', () => {
    const key = buildEnvKey(base);
    expect(key).toMatch(/^trixie-amd64-2026w48-[0-9a-f]{10}$/);
    expect(key).not.toContain('mirror.example');
  });

  it('changes with the mirror and the week, not with the time within the week', () => {
    const key = buildEnvKey(base);
    expect(buildEnvKey({ ...base, mirror: '' })).not.toBe(key);
    expect(buildEnvKey({ ...base, now: new Date('2026-12-01T00:00:00Z') })).toMatch(/^trixie-amd64-2026w49-/);
    expect(buildEnvKey({ ...base, now: new Date('2026-11-23T00:00:01Z') })).toBe(key);
  });

  it('keeps a separate environment for a snapshot mirror (check-valid-until false), and the usual key otherwise', () => {
    const key = buildEnvKey(base);
    expect(buildEnvKey({ ...base, checkValidUntil: true })).toBe(key);
    expect(buildEnvKey({ ...base, checkValidUntil: false })).not.toBe(key);
  });

  it('pads the week', () => {
    expect(buildEnvKey({ ...base, release: 'bookworm', now: new Date('2026-01-05T00:00:00Z') })).toMatch(
      /^bookworm-amd64-2026w02-/,
    );
  });
});

describe('pruneBuildEnvs', () => {
  let dir: string | undefined;
  let root: string | undefined;
  afterEach(() => root && rmSync(root, { recursive: true, force: true }));

  it('removes the same release and architecture of other weeks and mirrors, nothing else', () => {
    root = mkdtempSync(join(tmpdir(), 'dvc-prune-'));
    dir = buildEnvDir(root);
    mkdirSync(dir, { recursive: true });
    const files = [
      'trixie-amd64-2026w47-aaaaaaaaaa.tar',
      'trixie-amd64-2026w48-bbbbbbbbbb.tar',
      'trixie-amd64-2026w48-cccccccccc.tar',
      'trixie-arm64-2026w47-aaaaaaaaaa.tar',
      'bookworm-amd64-2026w47-aaaaaaaaaa.tar',
      '.partial-x1y2z3',
    ];
    for (const f of files) writeFileSync(join(dir, f), '');
    expect(pruneBuildEnvs(dir, 'trixie', 'amd64', 'trixie-amd64-2026w48-cccccccccc').sort()).toEqual([
      'trixie-amd64-2026w47-aaaaaaaaaa.tar',
      'trixie-amd64-2026w48-bbbbbbbbbb.tar',
    ]);
    expect(readdirSync(dir).sort()).toEqual([
      '.partial-x1y2z3',
      'bookworm-amd64-2026w47-aaaaaaaaaa.tar',
      'trixie-amd64-2026w48-cccccccccc.tar',
      'trixie-arm64-2026w47-aaaaaaaaaa.tar',
    ]);
  });

  it('is a no-op without a cache directory', () => {
    expect(pruneBuildEnvs('/nonexistent/build-env', 'trixie', 'amd64', 'x')).toEqual([]);
  });
});

describe('mmdebstrap argv', () => {
  it('runs in root mode when asked to (no user namespaces for this user), with the same hooks', () => {
    const opts = { release: 'trixie', architecture: 'amd64', mirror: MIRROR, target: 't.tar', checkValidUntil: true };
    const unshare = createEnvArgv({ ...opts, mode: 'unshare' });
    const root = createEnvArgv({ ...opts, mode: 'root' });
    expect(root[1]).toBe('--mode=root');
    expect(root.slice(2)).toEqual(unshare.slice(2));
    expect(buildArgv({ ...opts, mode: 'root' })[1]).toBe('--mode=root');
  });

  it('creates the environment in unshare mode from the buildd variant, with the mirror last', () => {
    expect(
      createEnvArgv({
        release: 'trixie',
        architecture: 'amd64',
        mirror: MIRROR,
        target: '/c/env.tar',
        checkValidUntil: true,
        mode: 'unshare',
      }),
    ).toEqual([
      'mmdebstrap',
      '--mode=unshare',
      '--variant=buildd',
      '--keyring=/usr/share/keyrings/debian-archive-keyring.gpg',
      '--architectures=amd64',
      '--include=fakeroot',
      '--skip=output/dev',
      '--format=tar',
      '--customize-hook=chroot "$1" useradd --create-home --shell /bin/sh builder',
      'trixie',
      '/c/env.tar',
      MIRROR,
    ]);
  });

  it("leaves the mirror to mmdebstrap's default when none is configured", () => {
    expect(
      createEnvArgv({
        release: 'bookworm',
        architecture: 'arm64',
        mirror: '',
        target: 't.tar',
        checkValidUntil: true,
        mode: 'unshare',
      }).slice(-2),
    ).toEqual(['bookworm', 't.tar']);
    expect(
      buildArgv({ release: 'bookworm', architecture: 'arm64', mirror: '', checkValidUntil: true, mode: 'unshare' }).slice(-2),
    ).toEqual(['bookworm', '/dev/null']);
  });

  it('lets apt accept expired Release files only when check-valid-until is false', () => {
    const opt = '--aptopt=Acquire::Check-Valid-Until "false"';
    const env = { release: 'sid', architecture: 'amd64', mirror: MIRROR, target: 't.tar' };
    expect(createEnvArgv({ ...env, checkValidUntil: false, mode: 'unshare' })).toContain(opt);
    expect(createEnvArgv({ ...env, checkValidUntil: true, mode: 'unshare' })).not.toContain(opt);
    expect(buildArgv({ ...env, checkValidUntil: false, mode: 'unshare' })).toContain(opt);
    expect(buildArgv({ ...env, checkValidUntil: true, mode: 'unshare' })).not.toContain(opt);
  });

  it('builds in a throwaway chroot (target /dev/null) with constant hooks that use relative paths only', () => {
    const argv = buildArgv({ release: 'trixie', architecture: 'amd64', mirror: MIRROR, checkValidUntil: true, mode: 'unshare' });
    expect(argv).toEqual([
      'mmdebstrap',
      '--mode=unshare',
      '--variant=custom',
      '--keyring=/usr/share/keyrings/debian-archive-keyring.gpg',
      '--architectures=amd64',
      '--setup-hook=tar-in build-env.tar /',
      '--setup-hook=mkdir -p "$1/dev"',
      '--customize-hook=mkdir -p "$1/build"',
      '--customize-hook=copy-in source build.sh /build',
      '--customize-hook=chroot "$1" sh /build/build.sh',
      '--customize-hook=sync-out /build/out out',
      'trixie',
      '/dev/null',
      MIRROR,
    ]);
    // Inputs never reach a hook (hooks run through sh): the only varying words are plain arguments.
    const hooks = argv.filter((a) => a.includes('-hook='));
    expect(hooks.join(' ')).not.toMatch(/trixie|amd64|mirror\.example/);
  });
});

describe('build script and environment', () => {
  it('installs build dependencies from debian/control and builds binary packages as an unprivileged user', () => {
    expect(BUILD_SCRIPT).toContain('apt-get build-dep --yes --no-install-recommends ./');
    expect(BUILD_SCRIPT).toContain('runuser -u builder -- env -i PATH=');
    expect(BUILD_SCRIPT).toContain('dpkg-buildpackage --no-sign --build=binary');
    // The script is a file of its own; its prefixes, user and PATH are the ones the TypeScript side uses.
    expect(BUILD_SCRIPT).toContain(`milestone() { echo "${MILESTONE_PREFIX}$*"; }`);
    expect(BUILD_SCRIPT).toContain(`fail() { echo "${FAILED_PREFIX}$*"; exit 1; }`);
    expect(BUILD_SCRIPT).toContain(`runuser -u ${BUILD_USER} -- env -i PATH=${CLEAN_PATH} HOME=/home/${BUILD_USER} `);
    expect(BUILD_SCRIPT).toContain(`chown -R ${BUILD_USER}: /build`);
  });

  it('passes nothing of the runner but proxies: a clean PATH, locale and the switches', () => {
    const host = {
      PATH: '/root/.pyenv/shims:/usr/bin',
      PYTHONPATH: '/x',
      HOME: '/home/runner',
      https_proxy: 'http://proxy:3128',
      GITHUB_TOKEN: 'secret',
    };
    expect(buildEnvironment(host, { lintian: true, tmpdir: '/tmp/w' })).toEqual({
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      LC_ALL: 'C.UTF-8',
      HOME: '/home/runner',
      TMPDIR: '/tmp/w',
      DVC_LINTIAN: '1',
      https_proxy: 'http://proxy:3128',
    });
  });
});
