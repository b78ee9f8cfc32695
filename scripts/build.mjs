// Bundles the three entry points with ncc into dist/<entry>/index.js (ESM, self-contained).
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
