#!/usr/bin/env node
// npm run bench: bundles bench/bench.ts (TypeScript that imports the product's own modules, type-checked by
// `tsc --noEmit` with the rest) with ncc into build/bench/ and runs it with the given flags.
import { execFileSync, spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build/bench');
execFileSync('npx', ['ncc', 'build', join(root, 'bench/bench.ts'), '-o', out, '--quiet', '--target', 'es2022'], {
  cwd: root,
  stdio: 'inherit',
});
const r = spawnSync(process.execPath, [join(out, 'index.js'), ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
process.exitCode = r.status ?? 1;
