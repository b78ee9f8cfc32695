import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { runningAsRoot } from './process-tree.js';

/** Runs a command as root (through sudo when we are not root); true when it succeeded. Never throws. */
export function runPrivilegedSync(argv: readonly string[]): boolean {
  const full = runningAsRoot() ? [...argv] : ['sudo', '--non-interactive', ...argv];
  try {
    execFileSync(full[0], full.slice(1), { stdio: 'ignore', timeout: 120_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes a directory tree; what a sudo'd tool left in it (root-owned files, a chroot) is removed
 * with privileges, never across a mount point. True when the tree is gone.
 */
export function removeTreeSync(path: string): boolean {
  try {
    rmSync(path, { recursive: true, force: true });
    return true;
  } catch {
    return runPrivilegedSync(['rm', '-rf', '--one-file-system', '--', path]);
  }
}
