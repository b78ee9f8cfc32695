// Bundles the three entry points with ncc into dist/<entry>/index.js (ESM, self-contained).
//
// TypeScript is pinned to 6.x in package.json: ncc compiles through ts-loader, which needs the
// compiler's JavaScript API (createProgram and friends). typescript@7, the native port, exports only
// lib/version.cjs and an "unstable" API from its package (checked with npm view typescript@7.0.2 exports),
// so ncc cannot build with it.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';

const out = process.argv[2] ?? 'dist';
rmSync(out, { recursive: true, force: true });
for (const entry of ['main', 'post', 'cli']) {
  execFileSync(
    'npx',
    ['ncc', 'build', `src/${entry}.ts`, '-o', `${out}/${entry}`, '--license', 'licenses.txt', '--quiet', '--target', 'es2022'],
    {
      stdio: 'inherit',
    },
  );
}
