// Fails when dist/ differs from what src/ bundles to (the typescript-action template's check-dist).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const fresh = mkdtempSync(join(tmpdir(), 'dvc-dist-'));
try {
  execFileSync('node', ['scripts/build.mjs', fresh], { stdio: 'inherit' });
  const list = (dir) =>
    readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? list(join(dir, n)) : [join(dir, n)]));
  const a = list('dist')
    .map((f) => relative('dist', f))
    .sort();
  const b = list(fresh)
    .map((f) => relative(fresh, f))
    .sort();
  const differ = [...new Set([...a, ...b])].filter((f) => {
    try {
      return !readFileSync(join('dist', f)).equals(readFileSync(join(fresh, f)));
    } catch {
      return true;
    }
  });
  if (differ.length) {
    console.error(`dist/ is stale: ${differ.join(', ')} differ from a fresh build. Run 'npm run build' and commit dist/.`);
    process.exit(1);
  }
  console.log('dist/ is up to date');
} finally {
  rmSync(fresh, { recursive: true, force: true });
}
