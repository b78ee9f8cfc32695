import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Whether a program runs under this host's User-Mode Linux kernel, checked apart from the product:
 * /bin/true as init over a read-only hostfs root; the kernel reports init's exit status on its console.
 * CI machines differ in CPU, and UML 6.1 fails on some (its first process dies of SIGSEGV).
 */
export function umlRunsHere(): boolean {
  if (process.arch !== 'x64' || !existsSync('/usr/bin/linux.uml')) return false;
  const r = spawnSync(
    '/usr/bin/linux.uml',
    ['mem=64M', 'root=/dev/root', 'rootfstype=hostfs', 'rootflags=/', 'ro', 'init=/bin/true', 'con=null', 'con0=null,fd:1'],
    { encoding: 'utf8', input: '', timeout: 60_000 },
  );
  return /exitcode=0x00000000\b/.test(`${r.stdout}${r.stderr}`);
}
