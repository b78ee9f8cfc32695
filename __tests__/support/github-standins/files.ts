import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/**
 * Every regular file below root as relative path -> "<bytes> <sha256>": equal snapshots mean equal bytes,
 * and a difference prints as a short diff instead of megabytes of buffer.
 */
export function snapshot(root: string): Map<string, string> {
  const files = new Map<string, string>();
  const visit = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      const stat = lstatSync(path);
      if (stat.isDirectory()) visit(path);
      else if (stat.isFile()) {
        const bytes = readFileSync(path);
        files.set(relative(root, path), `${bytes.length} ${createHash('sha256').update(bytes).digest('hex')}`);
      }
    }
  };
  visit(root);
  return files;
}

/** Unzips an artifact zip with Info-ZIP's unzip, an implementation independent of the one that wrote it. */
export function unzipTo(zip: Buffer, directory: string): Map<string, string> {
  mkdirSync(directory, { recursive: true });
  const file = join(directory, '..', `${Date.now()}-artifact.zip`);
  writeFileSync(file, zip);
  execFileSync('unzip', ['-q', '-o', file, '-d', directory]);
  return snapshot(directory);
}

/** A tree of files, some incompressible, some text, with a nested directory. */
export function writeTree(root: string, randomMiB: number): void {
  const write = (path: string, data: Buffer | string): void => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), data);
  };
  write('archives/random.bin', randomBytes(randomMiB * 1024 * 1024));
  write('archives/partial/Packages', 'Package: hello\nVersion: 2.10-3\n'.repeat(20_000));
  write('lists/lock', '');
}
