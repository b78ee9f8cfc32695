import { cpSync } from 'node:fs';
import { relative, resolve, sep } from 'node:path';

/**
 * Copies the project so that the build (and the changelog entry) never touch the user's tree.
 * Skips .git and any of `exclude` inside the tree: the output and cache directories often are.
 */
export function copySourceTree(from: string, to: string, exclude: readonly string[]): void {
  const skipped = exclude.map((p) => resolve(p));
  cpSync(from, to, {
    recursive: true,
    verbatimSymlinks: true,
    preserveTimestamps: true,
    filter: (src) => {
      const rel = relative(from, src);
      if (rel === '.git' || rel.startsWith(`.git${sep}`)) return false;
      const full = resolve(src);
      return !skipped.some((p) => full === p || full.startsWith(p + sep));
    },
  });
}
