import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Architecture } from '../debian.js';
import type { Deps } from '../deps.js';
import { DEBIAN_KEYRING } from '../host/mirror.js';

// Debian's goss package, downloaded with a private apt configuration that touches none of the host's apt state.

const STAGE = 'validate';

/** apt's arguments that point every file it reads or writes for package lists into `root`. */
export function privateAptOptions(root: string, arch: Architecture): string[] {
  return [
    '-o',
    `Dir::Etc::sourcelist=${join(root, 'etc/sources.list.d/goss.sources')}`,
    '-o',
    'Dir::Etc::sourceparts=-',
    '-o',
    `Dir::Etc::preferencesparts=${join(root, 'etc/preferences.d')}`,
    '-o',
    `Dir::State=${join(root, 'state')}`,
    '-o',
    `Dir::State::status=${join(root, 'state/status')}`,
    '-o',
    `Dir::Cache=${join(root, 'cache')}`,
    '-o',
    `APT::Architecture=${arch}`,
    '-o',
    `APT::Architectures=${arch}`,
    // The directory is private (mode 0700), so apt's _apt user could not write to it; apt only
    // switches users when it runs as root, so this is harmless for everyone else.
    '-o',
    'APT::Sandbox::User=root',
    '-o',
    'Acquire::Languages=none',
    '-q',
  ];
}

export async function aptDownload(work: string, mirror: string, suite: string, arch: Architecture, deps: Deps): Promise<string> {
  const root = join(work, suite);
  for (const dir of ['etc/sources.list.d', 'etc/preferences.d', 'state/lists/partial', 'cache/archives/partial', 'download']) {
    mkdirSync(join(root, dir), { recursive: true });
  }
  writeFileSync(join(root, 'state/status'), '');
  if (!existsSync(DEBIAN_KEYRING)) {
    throw new Error(`${DEBIAN_KEYRING} is missing: install the debian-archive-keyring package`);
  }
  writeFileSync(
    join(root, 'etc/sources.list.d/goss.sources'),
    `Types: deb\nURIs: ${mirror}\nSuites: ${suite}\nComponents: main\nSigned-By: ${DEBIAN_KEYRING}\n`,
  );
  // Run without sudo: every path apt writes is ours, so a non-root user can run it too.
  const options = privateAptOptions(root, arch);
  await deps.exec.run(['apt-get', ...options, 'update'], { stage: STAGE, timeoutSeconds: 600 });
  const download = join(root, 'download');
  await deps.exec.run(['apt-get', ...options, 'download', `goss:${arch}`], { stage: STAGE, cwd: download, timeoutSeconds: 600 });
  const deb = readdirSync(download).find((f) => f.endsWith('.deb'));
  if (!deb) throw new Error('apt-get download left no .deb');
  return join(download, deb);
}

/** "1:0.4.9-2+b3" -> "0.4.9": tool caches and goss-version speak upstream versions. */
export function upstreamVersion(debianVersion: string): string {
  return debianVersion
    .replace(/^\d+:/, '')
    .replace(/-[^-]*$/, '')
    .replace(/[+~](ds|dfsg)\d*$/, '');
}
