// Fails when dist/ differs from what src/ bundles to (the typescript-action template's check-dist).
//
// The build runs with a 3 GiB (sparse) qemu.img in ./debian-vm-ci-out, the CLI's default output
// directory, as after the README's main job: ncc once followed a literal path to that directory and
// tried to pack the image into dist/ (ERR_FS_FILE_TOO_LARGE). Only what this script planted is removed.
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const fresh = mkdtempSync(join(tmpdir(), 'dvc-dist-'));
const planted = join('debian-vm-ci-out', '.check-dist-planted');
const outExisted = existsSync('debian-vm-ci-out');
const plant = !existsSync(planted);
if (plant) {
  mkdirSync(planted, { recursive: true });
  writeFileSync(join(planted, 'qemu.img'), '');
  truncateSync(join(planted, 'qemu.img'), 3 * 1024 ** 3);
}
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
  if (plant) {
    rmSync(planted, { recursive: true, force: true });
    if (!outExisted) rmSync('debian-vm-ci-out', { recursive: true, force: true });
  }
}
