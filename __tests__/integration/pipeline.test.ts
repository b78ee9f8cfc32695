import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT as root } from '../support/cli-run.js';
import { runPipeline as runIn } from '../support/pipeline-run.js';
import { umlRunsHere } from '../support/uml.js';

// The whole pipeline through the bundled CLI, as users and the README run it: real shellcheck, mmdebstrap,
// QEMU (TCG here), goss in the guest, User-Mode Linux for an install-command. The README main job as root is
// bench-smoke.test.ts's run of ours; as the runner user, as-runner.test.ts; grml-debootstrap end to end is
// grml-debootstrap.test.ts (the long lane of vitest.config.ts).
const work = mkdtempSync(join(tmpdir(), 'dvc-pipeline-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const runCli = (args: string[], timeoutMinutes: number): ReturnType<typeof runIn> => runIn(work, args, timeoutMinutes);

type Stage = { name: string; status: string; error?: string };

describe('the pipeline end to end', () => {
  /** An install-command in the UML builder; nothing before or after install. */
  const umlCommandRun = (command: string): string[] => [
    '--working-directory',
    'examples/hello',
    '--lint',
    'false',
    '--build-package',
    'false',
    '--validate',
    'false',
    '--installer',
    'command',
    '--install-command',
    command,
    '--builder-backend',
    'uml',
    '--upload-image',
    'never',
  ];

  // CI machines differ in CPU: UML 6.1's first process dies of SIGSEGV on some. There the run must say so
  // before a builder starts (the next test); where UML runs, the builder must work.
  it.runIf(!umlRunsHere())('refuses builder-backend uml where User-Mode Linux does not run, before the install starts', () => {
    const { status, result, out } = runCli(umlCommandRun('true'), 10);
    expect(status, out.slice(-3000)).toBe(3);
    const stages = result.stages as Stage[];
    expect(stages[3].name).toBe('install');
    expect(stages[3].error).toMatch(
      /^builder-backend is uml but User-Mode Linux (does not work on this host: a program does not run in it \(.+\)|is not available here .+); use auto or qemu$/,
    );
    expect(out).not.toMatch(/in a User-Mode Linux builder/);
  });

  it('stops a builder whose kernel panicked at once, with the panic as the error, not after install-timeout', () => {
    // sysrq c: the builder's kernel panics, as it did under QEMU/TCG on its own ("Fatal exception in interrupt").
    const argv = umlCommandRun('echo c > /proc/sysrq-trigger; sleep 3600');
    argv[argv.indexOf('--builder-backend') + 1] = umlRunsHere() ? 'uml' : 'qemu';
    const { status, result, out } = runCli([...argv, '--install-timeout', '1800'], 20);
    expect(status, out.slice(-3000)).toBe(3);
    const install = (result.stages as Stage[])[3];
    expect(install.name).toBe('install');
    expect(install.error).toMatch(
      /builder's kernel panicked, so it was stopped: ".*Kernel panic - not syncing: sysrq triggered crash/,
    );
    expect(install.error).not.toMatch(/install-timeout/);
  });

  // The builder's network is walled to the apt proxy (vm-network: restricted): the command reaches the proxy, and not
  // a service on the runner's loopback (10.0.2.2 in an open user-mode network). The test's service listens the whole
  // run, so a connection would be made by the kernel even while this process waits for the CLI.
  it.each([{ backend: 'qemu' }, ...(umlRunsHere() ? [{ backend: 'uml' }] : [])])(
    "walls the $backend builder's network: the apt proxy answers, the runner's loopback does not",
    async ({ backend }) => {
      let connections = 0;
      const service = createNetServer((c) => {
        connections += 1;
        c.destroy();
      });
      await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
      const port = (service.address() as AddressInfo).port;
      const probe = [
        'h=${http_proxy#http://}; h=${h%/}',
        'if timeout 10 bash -c "exec 3<>/dev/tcp/${h%:*}/${h#*:}"; then echo "net: proxy reached"; else echo "net: proxy not reached"; fi',
        `if timeout 10 bash -c 'exec 3<>/dev/tcp/10.0.2.2/${port}'; then echo "net: loopback reached"; else echo "net: loopback walled"; fi`,
        'exit 1',
      ].join('\n');
      const argv = umlCommandRun(probe);
      argv[argv.indexOf('--builder-backend') + 1] = backend;
      const { status, out, dir } = runCli(argv, 20);
      await new Promise((r) => setTimeout(r, 500));
      await new Promise((r) => service.close(r));
      const log = readFileSync(join(dir, 'logs', 'install.log'), 'utf8');
      // The command's own exit 1: the project's failure.
      expect(status, out.slice(-3000)).toBe(1);
      expect(log).toMatch(/^.*net: proxy reached$/m);
      // UML's wall is a network namespace: a user that may make none (no user namespaces, not root) gets the open
      // network, and the run says so.
      if (backend === 'uml' && /the UML builder's network is not walled: no network namespace/.test(out)) {
        expect(log).toMatch(/^.*net: loopback reached$/m);
        return;
      }
      expect(log).toMatch(/^.*net: loopback walled$/m);
      expect(connections).toBe(0);
      if (backend === 'uml') expect(out).toMatch(/the UML builder's network is walled/);
    },
  );

  it.runIf(umlRunsHere())(
    'runs an install-command in a User-Mode Linux builder: device-mapper, the apt proxy, the job dir and the export disk work there',
    () => {
      const { status, result, out, dir } = runCli(
        [
          ...umlCommandRun(readFileSync(join(root, '__tests__/fixtures/install/partition-only.sh'), 'utf8')),
          '--image-size',
          '512M',
        ],
        20,
      );
      expect(out).toMatch(/command for trixie in a User-Mode Linux builder/);
      // The builder's console (the command's output included) is in the install log.
      expect(readFileSync(join(dir, 'logs', 'install.log'), 'utf8')).toContain('partition-only image done');
      const stages = result.stages as Stage[];
      expect(stages.map((s) => `${s.name}:${s.status}`).slice(3, 5), out.slice(-3000)).toEqual(['install:passed', 'boot:failed']);
      // The image has no boot loader on purpose: the firmware says so and the run fails at once.
      expect(status).toBe(1);
      expect(stages[4].error).toMatch(/the firmware found nothing to boot/);
      // What the command made in the builder came back intact: a partition at 1 MiB holding an ext4
      // file system with the package apt fetched through the run's proxy.
      const image = join(dir, 'image', 'qemu.img');
      expect(statSync(image).size).toBe(512 * 1024 ** 2);
      const disk = join(work, 'partition.img');
      spawnSync('dd', [`if=${image}`, `of=${disk}`, 'bs=1M', 'skip=1', 'conv=sparse', 'status=none']);
      const ls = spawnSync('debugfs', ['-R', 'ls -l /', disk], { encoding: 'utf8' });
      expect(ls.stdout).toMatch(/hello_[\w.~+-]+_amd64\.deb/);
      const release = spawnSync('debugfs', ['-R', 'cat /release', disk], { encoding: 'utf8' });
      expect(release.stdout.trim()).toBe('trixie');
    },
  );
});
