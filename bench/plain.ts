/**
 * The same work as a hand-written CI script does it: shellcheck, one mmdebstrap for the package build, our
 * installer's mmdebstrap command line and `mkfs.ext4 -d`, our QEMU command line with a serial log polled every
 * 0.5 s, a console login that mounts the share and runs goss, `systemctl poweroff`. Everything it shares with the
 * product (the Config, the install files, the mmdebstrap and QEMU command lines, the goss binary) comes from the
 * product's own modules, so a changed interface fails to compile instead of failing at run time.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
} from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../src/config.js';
import type { Deps } from '../src/deps.js';
import { resolveGoss } from '../src/goss/binary.js';
import { HostExec } from '../src/host/exec.js';
import { ConsoleReporter } from '../src/host/reporter.js';
import { directBootAppend, mmdebstrapArgv, writeInstallFiles } from '../src/install/mmdebstrap.js';
import { ResourceTracker } from '../src/state.js';
import { guestNetwork } from '../src/vm/guest-network.js';
import { qemuArgv } from '../src/vm/qemu.js';
import { LOGIN_PROMPT, PASSWORD_OR_LOGIN_PROMPT, SHARE_TAG, SHELL_PROMPT_OR_REFUSAL } from '../src/vm/session.js';
import { log, now, redact, round, run, sleep, tail } from './util.js';

const CLEAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The example's shell scripts, named by hand as such a script would. */
const SCRIPTS = ['bin/hello-dvc', 'lib/common.sh'];

export interface PlainRecord {
  lint?: number;
  package?: number;
  install?: number;
  boot?: number;
  validate?: number;
  /** `systemctl poweroff` typed to QEMU's exit: what ours adds to validate when it is the last guest stage. */
  powerOff?: number;
  total?: number;
  gossOwn?: number;
  validateExit?: number;
  error?: string;
}

/** Build-Depends of debian/control, version constraints, alternatives and profiles dropped. */
export function buildDepends(control: string): string[] {
  const field = /^Build-Depends(?:-Arch|-Indep)?:\s*((?:.*\n?)(?:[ \t].*\n?)*)/gm;
  const deps: string[] = [];
  for (const x of control.matchAll(field)) {
    for (const d of x[1].split(',')) {
      const name = d
        .split('|')[0]
        .replace(/\(.*?\)|\[.*?\]|<.*?>/g, '')
        .trim();
      if (name) deps.push(name);
    }
  }
  return deps;
}

/** Polls a file every interval until the pattern matches after `from` characters (a hand-written wait loop). */
async function waitFor(file: string, pattern: RegExp, from: number, deadlineSeconds: number): Promise<RegExpExecArray> {
  const t0 = now();
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'latin1').slice(from) : '';
    const m = pattern.exec(text);
    if (m) return m;
    if (now() - t0 > deadlineSeconds) throw new Error(`no ${String(pattern)} in ${file} within ${deadlineSeconds}s`);
    await sleep(500);
  }
}

const size = (file: string): number => (existsSync(file) ? readFileSync(file, 'latin1').length : 0);

/**
 * Logs in as root: types root at the login prompt, again when getty shows a new one instead of asking for the
 * password. The prompts are the product's patterns: under TCG a late kernel message often follows a prompt on the
 * same line ("debian login: [   35.2] clocksource: ..."), which a plain `login: *$` never matches.
 */
async function login(sock: Socket, serialLog: string, password: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const mark = size(serialLog);
    sock.write('root\n');
    const m = await waitFor(serialLog, PASSWORD_OR_LOGIN_PROMPT, mark, 90);
    if (m[1] === 'Password') break;
    if (attempt === 3) throw new Error('getty kept asking for the login name');
  }
  const mark = size(serialLog);
  sock.write(`${password}\n`);
  const m = await waitFor(serialLog, SHELL_PROMPT_OR_REFUSAL, mark, 120);
  if (m[1] === 'Login incorrect') throw new Error('the root login was refused');
}

/** One run of the hand-written sequence for the Config ours ran with; `cacheDir` has the goss binary ours used. */
export async function runPlain(
  example: string,
  label: string,
  config: Config,
  cacheDir: string,
  /** Where the serial log of a failed run is kept. */
  failedSerialDir: string,
): Promise<PlainRecord> {
  const work = mkdtempSync(join(tmpdir(), 'dvc-bench-plain-'));
  const logFile = join(work, 'plain.log');
  const env = { PATH: CLEAN_PATH, LC_ALL: 'C.UTF-8', HOME: process.env.HOME ?? '/root', TMPDIR: work };
  const t: PlainRecord = {};
  const tAll = now();
  log(`${label}: the same work without our orchestration (work dir ${work})`);
  try {
    // The goss binary ours ran (from the cache it filled): not part of any timed step.
    const reporter = new ConsoleReporter(() => undefined);
    const deps: Deps = {
      exec: new HostExec(reporter, new ResourceTracker(join(work, 'resources.json'))),
      reporter,
      resources: new ResourceTracker(join(work, 'resources.json')),
      env: process.env,
      github: undefined,
      cacheDir,
    };
    const goss = await resolveGoss(config, deps);

    // lint: shellcheck on the example's scripts; findings (exit 1) do not matter for timing, a missing file does.
    const lint = await run(['shellcheck', ...SCRIPTS], { cwd: example, logFile, check: false });
    if (lint.code !== 0 && lint.code !== 1) throw new Error(`shellcheck exited with ${lint.code}`);
    t.lint = lint.seconds;

    // package: one mmdebstrap from scratch, buildd variant plus the build dependencies, dpkg-buildpackage in a hook.
    mkdirSync(join(work, 'pkg'));
    cpSync(example, join(work, 'pkg/source'), { recursive: true });
    const include = ['fakeroot', ...buildDepends(readFileSync(join(example, 'debian/control'), 'utf8'))];
    const pkg = [
      'mmdebstrap',
      '--mode=unshare',
      '--variant=buildd',
      `--include=${include.join(',')}`,
      '--customize-hook=mkdir -p "$1/build"',
      '--customize-hook=copy-in source /build',
      '--customize-hook=chroot "$1" sh -c "cd /build/source && dpkg-buildpackage --no-sign --build=binary && mkdir /build/out && mv /build/*.deb /build/out/"',
      '--customize-hook=sync-out /build/out out',
      config.buildRelease,
      '/dev/null',
      ...(config.mirror ? [config.mirror] : []),
    ];
    t.package = (await run(pkg, { cwd: join(work, 'pkg'), env, logFile })).seconds;
    const debs = readdirSync(join(work, 'pkg/out'))
      .filter((f) => f.endsWith('.deb'))
      .map((f) => join(work, 'pkg/out', f));
    if (!debs.length) throw new Error('the plain package build made no .deb');

    // install: our installer's own mmdebstrap command line (straight to the mirror, no apt cache), then mkfs.ext4 -d.
    const files = join(work, 'files');
    const bootDir = join(work, 'boot');
    writeInstallFiles(config, files);
    mkdirSync(bootDir);
    const rootfs = join(work, 'rootfs'); // mke2fs before 1.47.1 reads a directory only
    const image = join(work, 'qemu.img');
    const t0 = now();
    await run(mmdebstrapArgv(config, { files, debs, target: rootfs, bootDir }), { env, logFile });
    await run(['truncate', '-s', String(config.imageSizeBytes), image], { logFile });
    await run(['mkfs.ext4', '-q', '-F', '-L', 'dvc-root', '-d', rootfs, image], { logFile });
    await run(['rm', '-rf', '--one-file-system', rootfs], { logFile });
    t.install = now() - t0;
    const bootFiles = readdirSync(join(bootDir, 'boot'));
    const kernel = bootFiles.find((f) => /^vmlinu[xz]-/.test(f));
    const initrd = bootFiles.find((f) => /^initrd\.img-/.test(f));
    if (!kernel || !initrd) throw new Error(`no kernel and initrd in the image's /boot (${bootFiles.join(', ')})`);

    // boot: our QEMU command line; the serial log polled every 0.5 s for the login prompt.
    const vm = join(work, 'vm');
    const share = join(vm, 'share');
    mkdirSync(share, { recursive: true });
    copyFileSync(goss.path, join(share, 'goss'));
    spawnSync('chmod', ['755', join(share, 'goss')]);
    copyFileSync(config.gossfile, join(share, 'goss.yaml'));
    await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', image, join(vm, 'overlay.qcow2')], { logFile });
    const serialLog = join(vm, 'serial.log');
    const serialSocket = join(vm, 'serial.sock');
    const argv = qemuArgv({
      arch: config.architecture,
      accel: 'tcg',
      cpus: config.vmCpus,
      memoryMiB: config.vmMemoryMiB,
      firmware: 'bios',
      disk: join(vm, 'overlay.qcow2'),
      diskFormat: 'qcow2',
      direct: { kernel: join(bootDir, 'boot', kernel), initrd: join(bootDir, 'boot', initrd), append: directBootAppend(config) },
      serialSocket,
      serialLog,
      // No proxy serves it: the baseline's guest needs no network.
      network: guestNetwork(vm, true),
      monitorSocket: join(vm, 'monitor.sock'),
      pidFile: join(vm, 'qemu.pid'),
      share: { path: share, tag: SHARE_TAG },
    });
    const tBoot = now();
    const qemuLog = openSync(join(work, 'qemu.log'), 'w');
    const qemu = spawn(argv[0], argv.slice(1), { stdio: ['ignore', qemuLog, qemuLog] });
    let qemuExited = false;
    const exited = new Promise<void>((r) =>
      qemu.on('close', () => {
        qemuExited = true;
        r();
      }),
    );
    // The socket is the console's input; its output is dropped and read from the log file instead.
    let sock: Socket | undefined;
    for (let i = 0; !sock; i++) {
      sock = await new Promise<Socket | undefined>((r) => {
        const s = createConnection(serialSocket);
        s.once('connect', () => r(s));
        s.once('error', () => r(undefined));
      });
      if (!sock) {
        if (qemuExited || i > 200) throw new Error('QEMU did not open its serial socket');
        await sleep(50);
      }
    }
    sock.on('data', () => undefined);
    sock.on('error', () => undefined);
    try {
      await waitFor(serialLog, LOGIN_PROMPT, 0, 900);
      t.boot = now() - tBoot;

      // validate: log in on the console, mount the share, run goss.
      const tVal = now();
      await login(sock, serialLog, config.password);
      const mark = size(serialLog);
      sock.write(
        `mkdir -p /mnt/dvc && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ${SHARE_TAG} /mnt/dvc && cd /mnt/dvc && ./goss -g goss.yaml validate --format json > goss.json; echo "BENCH-DONE $?"\n`,
      );
      const done = await waitFor(serialLog, /BENCH-DONE (\d+)\r?\n/, mark, 900);
      t.validateExit = Number(done[1]);
      t.validate = now() - tVal;
      if (existsSync(join(share, 'goss.json'))) {
        t.gossOwn =
          (JSON.parse(readFileSync(join(share, 'goss.json'), 'utf8')) as { summary: { 'total-duration': number } }).summary[
            'total-duration'
          ] / 1e9;
      }
      if (t.validateExit !== 0) throw new Error(`goss exited with ${t.validateExit} in the hand-written run`);

      // power-off: as ours does it, QEMU's exit awaited.
      const tOff = now();
      sock.write('cd / && umount /mnt/dvc; systemctl poweroff\n');
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 180_000)));
      const off = await Promise.race([exited, deadline]);
      clearTimeout(timer);
      if (off === 'timeout') throw new Error('the guest did not power off within 180 s');
      t.powerOff = now() - tOff;
    } finally {
      sock.destroy();
      if (!qemuExited) qemu.kill('SIGTERM');
      await exited;
      closeSync(qemuLog);
    }
    t.total = now() - tAll;
    log(`${label}: ${JSON.stringify(Object.fromEntries(Object.entries(t).map(([k, v]) => [k, round(v as number)])))}`);
  } catch (e) {
    log(`${label} failed: ${e instanceof Error ? e.message : String(e)}\n${tail(logFile)}`);
    const serial = join(work, 'vm/serial.log');
    if (existsSync(serial)) {
      mkdirSync(failedSerialDir, { recursive: true });
      copyFileSync(serial, join(failedSerialDir, 'plain-serial.log'));
      log(`${label}: its serial log is in ${join(failedSerialDir, 'plain-serial.log')}`);
    }
    t.error = redact(e instanceof Error ? e.message : String(e));
  } finally {
    spawnSync('rm', ['-rf', '--one-file-system', work]);
  }
  return t;
}
