/** mmdebstrap on this host, for the install stage's image and the builder image: its tools, its phases. */
import type { StageIo } from '../deps.js';
import type { Architecture } from '../debian.js';
import { ensureForeignArchitecture } from './foreign-arch.js';
import { DEBIAN_KEYRING_TOOL } from './mirror.js';
import { ensureHostTools } from './packages.js';

/**
 * Installs what running mmdebstrap and `mkfs.ext4 -d` needs when it is missing, and makes sure this host runs `arch`'s
 * programs (qemu-user and binfmt_misc for an arm64 system on amd64), saying so when they are emulated.
 */
export async function prepareMmdebstrapHost(io: StageIo, arch: Architecture, what: string): Promise<void> {
  await ensureHostTools(io.deps, 'install', `building ${what} with mmdebstrap`, [
    { command: 'mmdebstrap', package: 'mmdebstrap' },
    { command: 'mkfs.ext4', package: 'e2fsprogs' },
    DEBIAN_KEYRING_TOOL,
  ]);
  const foreign = await ensureForeignArchitecture(io.deps, 'install', arch, `the ${arch} ${what}`, io.log);
  if (foreign !== 'native') io.progress(`${arch} programs run through qemu-user (${foreign}): the chroot of ${what} is emulated`);
}

/**
 * mmdebstrap's own phases ("I: installing remaining packages inside the chroot...") as progress lines, each
 * once: the install stage's mmdebstrap and the builder image's run for many minutes under emulation, and the log
 * should show where they are.
 */
export function mmdebstrapPhases(progress: (message: string) => void): (line: string) => void {
  let last = '';
  return (line) => {
    const phase = /^I: (\w[\w ]+?)(\.\.\.|:)/.exec(line)?.[1];
    if (phase && phase !== last && !/^(running|using|automatically)/.test(phase)) {
      last = phase;
      progress(`mmdebstrap: ${phase}`);
    }
  };
}
