import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/*
 * Broken copies of a good mmdebstrap image (an ext4 file system without a partition table), made
 * with debugfs: no mount, no loop device, no root needed beyond write access to the copy.
 */

/** A sparse copy of a raw image (a 3 GiB image holds about 400 MB of data). */
export function copyImage(from: string, to: string): string {
  mkdirSync(dirname(to), { recursive: true });
  execFileSync('cp', ['--sparse=always', from, to]);
  return to;
}

function debugfs(image: string, commands: string[], dir: string): string {
  const script = join(dir, `debugfs-${process.pid}-${Date.now()}.cmds`);
  writeFileSync(script, commands.join('\n') + '\n');
  // debugfs reports most command errors on stderr and still exits 0: callers check the result.
  try {
    return execFileSync('debugfs', ['-w', '-f', script, image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } finally {
    rmSync(script, { force: true });
  }
}

/** Reads a file from the image. */
export function readImageFile(image: string, path: string): string {
  return execFileSync('debugfs', ['-R', `cat ${path}`, image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

/** Replaces (or creates) a file in the image, owned by root with the given mode. */
export function writeImageFile(image: string, path: string, content: string, mode = 0o644): void {
  const dir = dirname(image);
  const local = join(dir, `content-${process.pid}-${Date.now()}`);
  writeFileSync(local, content, { mode });
  try {
    debugfs(image, [`rm ${path}`, `write ${local} ${path}`, `sif ${path} uid 0`, `sif ${path} gid 0`], dir);
  } finally {
    rmSync(local, { force: true });
  }
  const back = readImageFile(image, path);
  if (back !== content)
    throw new Error(`debugfs did not write ${path} into ${image} (read back ${JSON.stringify(back.slice(0, 200))})`);
}

/**
 * An /etc/fstab entry for a device that never appears, without nofail: systemd gives up on it
 * after the device timeout and enters emergency mode. The default timeout is 90 s; 5 s keeps the
 * test short without changing what the console shows.
 */
export const MISSING_FSTAB_ENTRY =
  'UUID=0badc0de-0000-4000-8000-000000000000 /mnt/x ext4 defaults,x-systemd.device-timeout=5s 0 2';

export function breakFstab(good: string, to: string): string {
  copyImage(good, to);
  const fstab = readImageFile(to, '/etc/fstab');
  if (!fstab.includes(' / ')) throw new Error(`unexpected /etc/fstab in ${good}: ${JSON.stringify(fstab)}`);
  writeImageFile(to, '/etc/fstab', `${fstab.trimEnd()}\n${MISSING_FSTAB_ENTRY}\n`);
  return to;
}

/** An empty raw disk: no partition table, no boot loader. */
export function blankDisk(to: string, bytes = 64 * 1024 ** 2): string {
  mkdirSync(dirname(to), { recursive: true });
  execFileSync('truncate', ['-s', String(bytes), to]);
  return to;
}

/** The kernel command line with root= replaced and extra words appended. */
export function withAppend(append: string, changes: { root?: string; extra?: string[] }): string {
  let words = append.split(/\s+/).filter(Boolean);
  if (changes.root) words = words.map((w) => (w.startsWith('root=') ? `root=${changes.root}` : w));
  return [...words, ...(changes.extra ?? [])].join(' ');
}
