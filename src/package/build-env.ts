import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { keyringArgs, validityAptopts } from '../host/mirror.js';
import { isoWeek } from '../iso-week.js';

/*
 * Why mmdebstrap and not sbuild (measured on the 2-core bookworm dev machine, hello example, trixie,
 * from the same 460 MB buildd tarball): mmdebstrap --mode=unshare with hooks 22.7 s, sbuild 0.85
 * --chroot-mode=unshare 28.9 s. Beyond speed, sbuild here needed an /etc/subuid entry for the
 * calling user (root has none on this host), ran `debian/rules clean` and dpkg-source on the
 * runner itself (failing without the build dependencies installed there, which is the very thing
 * a clean build avoids), and is a large extra host package; mmdebstrap is already needed by the
 * install stage. Both use Debian's own apt resolver for Build-Depends(-Indep).
 */

/** Bump when the recipe of the cached environment changes, so old tarballs stop matching. */
const BUILD_ENV_RECIPE = 1;

/** Packages on top of the buildd variant (build-essential): dpkg-buildpackage uses fakeroot when Rules-Requires-Root asks. */
export const BUILD_ENV_EXTRA_PACKAGES = ['fakeroot'] as const;

/** The unprivileged user the package is built as, like sbuild's `sbuild` user: a build that needs root shows up. */
export const BUILD_USER = 'builder';

export interface BuildEnvKeyInput {
  release: string;
  architecture: string;
  /** Empty: mmdebstrap's default mirror. */
  mirror: string;
  now: Date;
  /** false for snapshot mirrors (check-valid-until); the environment's apt configuration differs. */
  checkValidUntil?: boolean;
}

/**
 * `trixie-amd64-2026w48-<hash>`: a fresh environment each ISO week (the archive moves on and a stale
 * chroot would mean large upgrades at build time), one per mirror (the tarball's apt sources name it;
 * hashed so that the mirror's name never appears in file names or logs) and per recipe.
 */
export function buildEnvKey(input: BuildEnvKeyInput): string {
  const week = isoWeek(input.now);
  const hash = createHash('sha256')
    .update(
      JSON.stringify({
        mirror: input.mirror,
        recipe: BUILD_ENV_RECIPE,
        extra: BUILD_ENV_EXTRA_PACKAGES,
        // Only when off, so that the keys of existing environments stay the same.
        ...(input.checkValidUntil === false ? { checkValidUntil: false } : {}),
      }),
    )
    .digest('hex')
    .slice(0, 10);
  return `${buildEnvPrefix(input.release, input.architecture)}${week}-${hash}`;
}

function buildEnvPrefix(release: string, architecture: string): string {
  return `${release}-${architecture}-`;
}

/**
 * The architecture to build on: a source whose binary packages are all `Architecture: all` builds the same
 * packages on any architecture, so it is built on the host's own (natively) and installed into an image of
 * another; anything else builds on the image's architecture (through qemu-user when that is not the host's).
 */
export function buildArchitecture<A extends string>(control: string, target: A, host: A | undefined): A {
  const binaries = control
    .split(/\n\s*\n/)
    .filter((stanza) => /^Package:/im.test(stanza))
    .map((stanza) => /^Architecture:\s*(.*)$/im.exec(stanza)?.[1]?.trim().split(/\s+/) ?? []);
  const allOnly = binaries.length > 0 && binaries.every((archs) => archs.length === 1 && archs[0] === 'all');
  return allOnly && host ? host : target;
}

export function buildEnvDir(cacheDir: string): string {
  return join(cacheDir, 'build-env');
}

/** Removes the other tarballs of the same release and architecture (older weeks, other mirrors); returns their names. */
export function pruneBuildEnvs(dir: string, release: string, architecture: string, keepKey: string): string[] {
  if (!existsSync(dir)) return [];
  const prefix = buildEnvPrefix(release, architecture);
  const stale = readdirSync(dir).filter((f) => f.startsWith(prefix) && f.endsWith('.tar') && f !== `${keepKey}.tar`);
  for (const f of stale) rmSync(join(dir, f), { force: true });
  return stale;
}

/**
 * mmdebstrap's unshare mode works without root (through newuidmap and /etc/subuid) and as root,
 * leaves no mounts behind on the host when it is killed, and makes the same tarball as root mode.
 * Where the user may not create user namespaces, root mode through sudo (src/host/userns.ts).
 */
export type BuildMode = 'unshare' | 'root';

/** What both mmdebstrap runs of the package stage are for: the release, architecture, mirror, mode. */
interface BuildTarget {
  release: string;
  architecture: string;
  mirror: string;
  checkValidUntil: boolean;
  mode: BuildMode;
}

/** mmdebstrap's first options for both runs: mode, variant, keyring, Valid-Until, architecture. */
function commonArgv(opts: BuildTarget, variant: 'buildd' | 'custom'): string[] {
  return [
    'mmdebstrap',
    `--mode=${opts.mode}`,
    `--variant=${variant}`,
    ...keyringArgs(),
    ...validityAptopts(opts.checkValidUntil),
    `--architectures=${opts.architecture}`,
  ];
}

/** The mmdebstrap argv that makes the reusable build environment tarball. */
export function createEnvArgv(opts: BuildTarget & { target: string }): string[] {
  return [
    ...commonArgv(opts, 'buildd'),
    `--include=${BUILD_ENV_EXTRA_PACKAGES.join(',')}`,
    // Device nodes cannot be unpacked again inside a user namespace; mmdebstrap recreates /dev itself.
    '--skip=output/dev',
    '--format=tar',
    `--customize-hook=chroot "$1" useradd --create-home --shell /bin/sh ${BUILD_USER}`,
    opts.release,
    opts.target,
    ...(opts.mirror ? [opts.mirror] : []),
  ];
}

/** Names inside the work directory, which is mmdebstrap's cwd: hooks use relative paths only, so no caller path ever reaches mmdebstrap's hook parser (which splits on spaces) or a shell. */
export const WORK_NAMES = {
  envTar: 'build-env.tar',
  source: 'source',
  script: 'build.sh',
  out: 'out',
} as const;

/**
 * The mmdebstrap argv of one build: unpack the cached environment, copy the source in, run the
 * build script in the chroot, copy the results out, and throw the chroot away (target /dev/null).
 * Every hook is a constant string; the varying inputs reach the script through its environment.
 */
export function buildArgv(opts: BuildTarget): string[] {
  return [
    ...commonArgv(opts, 'custom'),
    `--setup-hook=tar-in ${WORK_NAMES.envTar} /`,
    '--setup-hook=mkdir -p "$1/dev"',
    '--customize-hook=mkdir -p "$1/build"',
    `--customize-hook=copy-in ${WORK_NAMES.source} ${WORK_NAMES.script} /build`,
    `--customize-hook=chroot "$1" sh /build/${WORK_NAMES.script}`,
    `--customize-hook=sync-out /build/out ${WORK_NAMES.out}`,
    opts.release,
    '/dev/null',
    ...(opts.mirror ? [opts.mirror] : []),
  ];
}

/** Marks the build script's own lines in the log: milestones for progress, and which step failed. */
export const MILESTONE_PREFIX = 'debian-vm-ci: ';
export const FAILED_PREFIX = 'debian-vm-ci: FAILED: ';

export const CLEAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The build script (src/package/build.sh): runs as root inside the throwaway chroot; see its header. */
export const BUILD_SCRIPT = readFileSync(new URL('./build.sh', import.meta.url), 'utf8');

/** The environment of mmdebstrap and so of the build script: nothing of the runner's but a proxy. */
export function buildEnvironment(host: NodeJS.ProcessEnv, opts: { lintian: boolean; tmpdir: string }): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: CLEAN_PATH,
    LC_ALL: 'C.UTF-8',
    HOME: host.HOME ?? '/root',
    // mmdebstrap keeps its chroot directory under TMPDIR: inside our work directory, it goes with it.
    TMPDIR: opts.tmpdir,
    DVC_LINTIAN: opts.lintian ? '1' : '0',
  };
  for (const name of ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) {
    if (host[name]) env[name] = host[name];
  }
  return env;
}
