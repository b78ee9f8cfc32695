import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { childEnvironment, sudoArgv } from '../src/host/exec.js';

// What a root process started through sudo sees of our environment, through the real sudo.
describe('the environment that crosses sudo', () => {
  it('only the allowed names, TMPDIR through env(1), never a token or the password', () => {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      DEBIAN_FRONTEND: 'noninteractive',
      DVC_LINTIAN: '1',
      http_proxy: 'http://proxy.example:3128/',
      TMPDIR: '/tmp/dvc-sudo-env-test',
      ACTIONS_RUNTIME_TOKEN: 'token-secret',
      INPUT_PASSWORD: 'pw-secret',
      DEBIAN_VM_CI_PASSWORD: 'pw-secret',
      GITHUB_WORKSPACE: '/home/runner/work/x',
      RUNNER_TOOL_CACHE: '/opt/hostedtoolcache',
      SOME_SECRET: 'other-secret',
      LD_PRELOAD: '/tmp/evil.so',
    };
    const argv = sudoArgv(['env'], env);
    expect(argv.slice(0, 3)).toEqual([
      'sudo',
      '--non-interactive',
      '--preserve-env=DEBIAN_FRONTEND,DVC_LINTIAN,LANG,LC_ALL,http_proxy',
    ]);
    const out = execFileSync(argv[0], argv.slice(1), { env: childEnvironment(env), encoding: 'utf8' });
    const seen = Object.fromEntries(
      out
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(seen).toMatchObject({
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      DEBIAN_FRONTEND: 'noninteractive',
      DVC_LINTIAN: '1',
      http_proxy: 'http://proxy.example:3128/',
      TMPDIR: '/tmp/dvc-sudo-env-test',
    });
    for (const name of [
      'ACTIONS_RUNTIME_TOKEN',
      'INPUT_PASSWORD',
      'DEBIAN_VM_CI_PASSWORD',
      'GITHUB_WORKSPACE',
      'RUNNER_TOOL_CACHE',
      'SOME_SECRET',
      'LD_PRELOAD',
    ])
      expect(seen, name).not.toHaveProperty(name);
    expect(out).not.toMatch(/secret/);
  });

  it('no --preserve-env at all when nothing is allowed', () => {
    expect(sudoArgv(['true'], { PATH: '/usr/bin', HOME: '/home/runner' })).toEqual(['sudo', '--non-interactive', '--', 'true']);
  });
});
