import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildOutputFiles } from '../src/package/output.js';

const dir = mkdtempSync(join(tmpdir(), 'dvc-package-output-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the files a package build leaves (written by the package under test)', () => {
  it("takes regular files under Debian's names and refuses links, directories and names a shell would act on", () => {
    for (const f of [
      'hello_2.10-3_amd64.deb',
      'hello-udeb_2.10-3_amd64.udeb',
      'hello_2.10-3_amd64.changes',
      'hello_1.0+git~1_amd64.buildinfo',
    ])
      writeFileSync(join(dir, f), 'x');
    writeFileSync(join(dir, 'x$(id>&2).deb'), 'x');
    writeFileSync(join(dir, 'a b_1_all.deb'), 'x');
    writeFileSync(join(dir, 'build.log'), 'not an upload: ignored');
    symlinkSync('/etc/shadow', join(dir, 'shadow_1_all.deb'));
    mkdirSync(join(dir, 'dir_1_all.deb'));
    const { files, refused } = buildOutputFiles(dir);
    expect(files).toEqual([
      'hello-udeb_2.10-3_amd64.udeb',
      'hello_1.0+git~1_amd64.buildinfo',
      'hello_2.10-3_amd64.changes',
      'hello_2.10-3_amd64.deb',
    ]);
    expect(refused).toEqual([
      '"a b_1_all.deb" (not a Debian package file name)',
      'dir_1_all.deb (not a regular file)',
      'shadow_1_all.deb (not a regular file)',
      '"x$(id>&2).deb" (not a Debian package file name)',
    ]);
  });
});
