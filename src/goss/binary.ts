import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  writeFileSync,
  readdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import * as tc from '@actions/tool-cache';
import type { Config } from '../config.js';
import type { Architecture } from '../debian.js';
import type { Deps } from '../deps.js';
import { StageError } from '../errors.js';
import { hostArchitecture } from '../debian.js';
import { DEBIAN_KEYRING_TOOL } from '../host/mirror.js';
import { ensureHostTools } from '../host/packages.js';
import { aptDownload, upstreamVersion } from './debian-apt.js';
import { compareVersions, elfArchitecture, requiredGlibc } from './elf.js';

/**
 * Finds the goss binary that runs inside the guest: goss-path, else the official release
 * (checksum-verified, cached), else — when GitHub cannot be reached — Debian's goss package.
 *
 * Measured on Debian's builds (0.4.9-2+b3 in trixie, 0.4.10-1 in sid): they do NOT accept
 * --version (their version string is not linked in), and they are dynamically linked against
 * glibc >= 2.34, so they do not run on bullseye (glibc 2.31). The official release binaries are
 * static (CGO_ENABLED=0) and print "goss version v0.4.9".
 */

export type GossSource = 'path' | 'cache' | 'download' | 'debian';

export interface ResolvedGoss {
  /** Absolute path on the host; the caller copies it into the guest. */
  readonly path: string;
  /** Upstream version (0.4.9), or 'unknown' for a goss-path binary that does not say. */
  readonly version: string;
  readonly source: GossSource;
  /** Where the bytes came from: the official release or Debian's package (also for 'cache'). */
  readonly origin: 'release' | 'debian' | 'path';
  /** Highest glibc symbol version the binary needs ('2.34'), undefined for a static binary. */
  readonly requiredGlibc: string | undefined;
}

const STAGE = 'validate';
const RELEASE_TOOL = 'goss';
const DEBIAN_TOOL = 'goss-debian';
/** Debian suites that carry goss, best first: trixie has 0.4.9 (the default goss-version), sid the newest. */
export const DEBIAN_GOSS_SUITES = ['trixie', 'sid'] as const;
const DOWNLOAD_TIMEOUT_SECONDS = 300;

export async function resolveGoss(config: Config, deps: Deps): Promise<ResolvedGoss> {
  const arch = config.architecture;
  if (config.gossPath) return checkLocalGoss(config.gossPath, arch, deps);

  const cache = toolCache(deps);
  const cachedRelease = cache.find(RELEASE_TOOL, config.gossVersion, arch);
  if (cachedRelease) return described(cachedRelease, config.gossVersion, 'cache', 'release');

  let unavailable: DownloadUnavailableError;
  try {
    const path = await downloadRelease(config, deps, cache);
    return described(path, config.gossVersion, 'download', 'release');
  } catch (err) {
    // Only an unreachable or refusing server falls back; a bad checksum or a missing release never does.
    if (!(err instanceof DownloadUnavailableError)) throw err;
    if (!config.mirror) {
      throw new StageError(
        STAGE,
        `Could not download goss ${config.gossVersion}: ${err.message}. No Debian mirror is known to fall back to: set mirror or goss-path.`,
      );
    }
    unavailable = err;
  }

  const title = 'goss: using the Debian package';
  // A Debian build fetched by an earlier run beats going to the mirror again. It is only used
  // after the download failed: the static release binary is preferred whenever it can be had.
  const sameVersion = cache.find(DEBIAN_TOOL, config.gossVersion, arch);
  const anyDebian = sameVersion ? { path: sameVersion, version: config.gossVersion } : cache.findAny(DEBIAN_TOOL, arch);
  if (anyDebian) {
    deps.reporter.warning(
      `Could not download goss ${config.gossVersion} (${unavailable.message}); using Debian's goss ${anyDebian.version} from the cache instead.`,
      { title },
    );
    return warnIfTooNew(described(anyDebian.path, anyDebian.version, 'cache', 'debian'), config, deps);
  }
  deps.reporter.warning(
    `Could not download goss ${config.gossVersion} (${unavailable.message}); using Debian's goss package from ${config.mirror} instead.`,
    { title },
  );
  const fromDebian = await fetchDebianGoss(config.mirror, arch, deps, cache);
  return warnIfTooNew(described(fromDebian.path, fromDebian.version, 'debian', 'debian'), config, deps);
}

function described(path: string, version: string, source: GossSource, origin: ResolvedGoss['origin']): ResolvedGoss {
  return { path, version, source, origin, requiredGlibc: requiredGlibc(path) };
}

/** glibc of each release that cannot run Debian's (dynamically linked) goss. */
const OLD_GLIBC: Readonly<Record<string, string>> = { bullseye: '2.31' };

function warnIfTooNew(goss: ResolvedGoss, config: Config, deps: Deps): ResolvedGoss {
  const guestGlibc = OLD_GLIBC[config.release];
  if (goss.requiredGlibc && guestGlibc && compareVersions(goss.requiredGlibc, guestGlibc) > 0) {
    deps.reporter.warning(
      `Debian's goss needs glibc ${goss.requiredGlibc}; ${config.release} has ${guestGlibc}, so goss will not run in this guest. Set goss-path to a static goss, or let the runner reach ${config.gossDownloadUrl}.`,
      { title: 'goss: Debian build too new for the guest' },
    );
  }
  return goss;
}

// ---------------------------------------------------------------------------------------------
// goss-path

async function checkLocalGoss(path: string, arch: Architecture, deps: Deps): Promise<ResolvedGoss> {
  const machine = elfArchitecture(path);
  if (machine !== arch) {
    throw new StageError(
      STAGE,
      `goss-path ${path} is ${machine ? `a Linux ${machine} binary` : 'not a Linux executable'}, but the image is ${arch}.`,
    );
  }
  let version = 'unknown';
  // A binary for another architecture cannot run here; its ELF header is all we can check.
  if (hostArchitecture() === arch) {
    version = await runGossVersion(path, deps);
  }
  return { path, version, source: 'path', origin: 'path', requiredGlibc: requiredGlibc(path) };
}

/** `goss --version`; Debian's builds reject that flag, so `--help` then proves the binary runs. */
async function runGossVersion(path: string, deps: Deps): Promise<string> {
  const byFlag = await deps.exec.run([path, '--version'], { stage: STAGE, check: false, timeoutSeconds: 30 });
  const match = /goss version v?(\d+\.\d+\.\d+\S*)/.exec(byFlag.stdout + byFlag.stderr);
  if (byFlag.exitCode === 0 && match) return match[1];
  const help = await deps.exec.run([path, '--help'], { stage: STAGE, check: false, timeoutSeconds: 30 });
  if (help.exitCode === 0 && /goss/i.test(help.stdout)) return 'unknown';
  const said = (help.stderr.trim() || help.stdout.trim()).split('\n').slice(0, 3).join(' ');
  throw new StageError(STAGE, `${path} does not run as goss: --help exited with status ${help.exitCode}: ${said}`);
}

// ---------------------------------------------------------------------------------------------
// The official release

/** The release server could not be reached or refused (network, 5xx, 403, 429): Debian may stand in. */
class DownloadUnavailableError extends Error {}

/** goss-download-url with {version} and {arch} filled in. */
export function gossDownloadUrl(template: string, version: string, arch: Architecture): string {
  return template.replace(/\{version\}/g, version).replace(/\{arch\}/g, arch);
}

/**
 * The hash for `asset` in a sha256sum-style checksum file. goss publishes `<asset>.sha256`
 * made by `sha256sum goss-linux-amd64` (release-build.sh); older Makefiles ran it from the
 * parent directory, so the name may carry a `release/` prefix, and a `*` marks binary mode.
 */
export function parseChecksumFile(text: string, asset: string): string | undefined {
  const entries = text
    .split(/\r?\n/)
    .map((line) => /^\s*([0-9a-fA-F]{64})(?:\s+\*?(.+?))?\s*$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ hash: m[1].toLowerCase(), name: m[2] ? basename(m[2]) : undefined }));
  const named = entries.find((e) => e.name === asset);
  if (named) return named.hash;
  // A bare hash is accepted; a single entry for another file means the URL template is wrong.
  return entries.length === 1 && entries[0].name === undefined ? entries[0].hash : undefined;
}

async function downloadRelease(config: Config, deps: Deps, cache: ToolCache): Promise<string> {
  const url = gossDownloadUrl(config.gossDownloadUrl, config.gossVersion, config.architecture);
  const asset = basename(new URL(url).pathname);
  const [binary, checksumText] = await Promise.all([fetchBytes(url), fetchBytes(`${url}.sha256`)]);
  const published = parseChecksumFile(checksumText.toString('utf8'), asset);
  if (!published) {
    throw new StageError(
      STAGE,
      `${url}.sha256 does not list a SHA-256 for ${asset}: ${JSON.stringify(checksumText.toString('utf8').slice(0, 200))}`,
    );
  }
  const actual = createHash('sha256').update(binary).digest('hex');
  if (actual !== published) {
    throw new StageError(
      STAGE,
      `Checksum mismatch for ${url}: the published ${asset}.sha256 says ${published}, the download is ${actual}.`,
    );
  }

  const workDir = privateTempDir(deps, 'goss download');
  try {
    const file = join(workDir.path, 'goss');
    writeFileSync(file, binary, { mode: 0o755 });
    // Awaited here: the finally below removes the file the cache copies from.
    return await cache.put(file, RELEASE_TOOL, config.gossVersion, config.architecture);
  } finally {
    workDir.remove();
  }
}

async function fetchBytes(url: string): Promise<Buffer> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_SECONDS * 1000), redirect: 'follow' });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new DownloadUnavailableError(`${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  if (response.status === 404) {
    throw new StageError(STAGE, `${url} does not exist (HTTP 404): check goss-version and goss-download-url.`);
  }
  if (!response.ok) throw new DownloadUnavailableError(`${url}: HTTP ${response.status} ${response.statusText}`.trim());
  return Buffer.from(await response.arrayBuffer());
}

// ---------------------------------------------------------------------------------------------
// Debian's package, fetched with a private apt configuration

/**
 * Downloads Debian's goss with apt, touching none of the host's apt state: its own sources
 * list, lists, cache and (empty) dpkg status under a temporary directory. apt checks the
 * package against the signed Release file, which stands in for goss's .sha256 here.
 */
async function fetchDebianGoss(
  mirror: string,
  arch: Architecture,
  deps: Deps,
  cache: ToolCache,
): Promise<{ path: string; version: string }> {
  await ensureHostTools(deps, STAGE, "checking the signature of Debian's goss package", [DEBIAN_KEYRING_TOOL]);
  const work = privateTempDir(deps, 'goss apt download');
  try {
    const failures: string[] = [];
    for (const suite of DEBIAN_GOSS_SUITES) {
      try {
        const deb = await aptDownload(work.path, mirror, suite, arch, deps);
        const extracted = join(work.path, `extract-${suite}`);
        await deps.exec.run(['dpkg-deb', '-x', deb, extracted], { stage: STAGE });
        const binary = join(extracted, 'usr/bin/goss');
        if (!existsSync(binary)) throw new Error(`${basename(deb)} has no usr/bin/goss`);
        // Debian's goss cannot tell its version (no --version): the package's version can.
        const debVersion = (await deps.exec.run(['dpkg-deb', '--field', deb, 'Version'], { stage: STAGE })).stdout.trim();
        if (hostArchitecture() === arch) await runGossVersion(binary, deps);
        const version = upstreamVersion(debVersion);
        return { path: await cache.put(binary, DEBIAN_TOOL, version, arch), version };
      } catch (err) {
        const details = err instanceof StageError ? err.details.slice(-3) : [];
        failures.push(`${suite}: ${[(err as Error).message, ...details].join(' | ')}`);
      }
    }
    throw new StageError(STAGE, `Could not get Debian's goss package from ${mirror}: ${failures.join('; ')}`);
  } finally {
    work.remove();
  }
}

// ---------------------------------------------------------------------------------------------
// Cache: @actions/tool-cache on a runner, deps.cacheDir/<tool>/<version>/<arch>/goss elsewhere

interface ToolCache {
  /** Path of the cached binary, or ''. */
  find(tool: string, version: string, arch: Architecture): string;
  /** The newest cached version, for when the wanted one is not to be had. */
  findAny(tool: string, arch: Architecture): { path: string; version: string } | undefined;
  /** Copies the binary in; returns the cached binary's path. */
  put(file: string, tool: string, version: string, arch: Architecture): Promise<string>;
}

function toolCache(deps: Deps): ToolCache {
  return deps.env.RUNNER_TOOL_CACHE ? new RunnerToolCache() : new DirectoryToolCache(deps.cacheDir);
}

/** The runner's tool cache (RUNNER_TOOL_CACHE), shared with setup-* actions and kept on self-hosted runners. */
class RunnerToolCache implements ToolCache {
  find(tool: string, version: string, arch: Architecture): string {
    const dir = tc.find(tool, version, arch);
    return dir && existsSync(join(dir, 'goss')) ? join(dir, 'goss') : '';
  }
  findAny(tool: string, arch: Architecture): { path: string; version: string } | undefined {
    const version = tc.findAllVersions(tool, arch).sort(compareVersions).at(-1);
    const path = version ? this.find(tool, version, arch) : '';
    return version && path ? { path, version } : undefined;
  }
  async put(file: string, tool: string, version: string, arch: Architecture): Promise<string> {
    return join(await tc.cacheFile(file, 'goss', tool, version, arch), 'goss');
  }
}

class DirectoryToolCache implements ToolCache {
  constructor(private readonly root: string) {}
  private binary(tool: string, version: string, arch: Architecture): string {
    return join(this.root, tool, version, arch, 'goss');
  }
  find(tool: string, version: string, arch: Architecture): string {
    const path = this.binary(tool, version, arch);
    return existsSync(path) ? path : '';
  }
  findAny(tool: string, arch: Architecture): { path: string; version: string } | undefined {
    const dir = join(this.root, tool);
    const versions = existsSync(dir) ? readdirSync(dir).filter((v) => this.find(tool, v, arch)) : [];
    const version = versions.sort(compareVersions).at(-1);
    return version ? { path: this.binary(tool, version, arch), version } : undefined;
  }
  async put(file: string, tool: string, version: string, arch: Architecture): Promise<string> {
    const target = this.binary(tool, version, arch);
    mkdirSync(dirname(target), { recursive: true });
    // Copy then rename: a concurrent run never sees half a binary.
    const partial = `${target}.partial-${process.pid}`;
    copyFileSync(file, partial);
    chmodSync(partial, 0o755);
    renameSync(partial, target);
    return target;
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function privateTempDir(deps: Deps, name: string): { path: string; remove(): void; unregister(): void } {
  const path = mkdtempSync(join(tmpdir(), 'debian-vm-ci-goss-'));
  const id = deps.resources.add({ kind: 'dir', name, path });
  let registered = true;
  const unregister = (): void => {
    if (registered) deps.resources.remove(id);
    registered = false;
  };
  return {
    path,
    unregister,
    remove() {
      rmSync(path, { recursive: true, force: true });
      unregister();
    },
  };
}
