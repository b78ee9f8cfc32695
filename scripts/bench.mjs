#!/usr/bin/env node
// Benchmark of the full pipeline on examples/hello (npm run bench; see bench/README.md).
//
// 1. Our pipeline (the README main job), cold (empty DEBIAN_VM_CI_CACHE) and warm (the cold run's caches):
//    median seconds per stage from result.json.
// 2. The same work as a hand-written CI script would do it (shellcheck, mmdebstrap build, mmdebstrap
//    install + mkfs.ext4 -d, QEMU with a file-polling wait for `login:`, a console login that mounts
//    9p and runs goss), timed per stage; then ours / theirs per stage.
// 3. The console watcher's latency through a real unix socket, per verdict kind.
// 4. The CLI process's peak memory.
//
// The Debian mirror comes from the host's apt sources at run time and is never written anywhere.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, createConnection } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const EXAMPLE = join(ROOT, 'examples/hello');
const STAGES = ['accel', 'lint', 'package', 'install', 'boot', 'validate', 'publish'];
const COLUMNS = [...STAGES, 'total'];
const CLEAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string' },
    'cold-runs': { type: 'string' },
    'warm-runs': { type: 'string' },
    'plain-runs': { type: 'string' },
    'watcher-samples': { type: 'string', default: '300' },
    'skip-pipeline': { type: 'boolean', default: false },
    'skip-plain': { type: 'boolean', default: false },
    output: { type: 'string', default: join(ROOT, 'bench/results.json') },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  console.log(`usage: npm run bench -- [--runs N] [--cold-runs N] [--warm-runs N] [--plain-runs N]
                      [--watcher-samples N] [--skip-pipeline] [--skip-plain] [--output FILE]
  --runs N sets cold, warm and plain runs at once (defaults: 1 cold, 3 warm, 1 plain).`);
  process.exit(0);
}
const count = (name, fallback) => {
  const v = opts[name] ?? opts.runs;
  const n = v === undefined ? fallback : Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, got ${v}`);
  return n;
};
const COLD_RUNS = opts['skip-pipeline'] ? 0 : count('cold-runs', 1);
const WARM_RUNS = opts['skip-pipeline'] ? 0 : count('warm-runs', 3);
const PLAIN_RUNS = opts['skip-plain'] ? 0 : count('plain-runs', 1);
const WATCHER_SAMPLES = Number(opts['watcher-samples']);

// ---------------------------------------------------------------------------------------------
// The mirror: read at run time, redacted from everything we print or write.

function hostMirror() {
  for (const file of ['/etc/apt/sources.list.d/debian.sources']) {
    if (!existsSync(file)) continue;
    const m = /^URIs:\s*(\S+)/m.exec(readFileSync(file, 'utf8'));
    if (m) return m[1];
  }
  if (existsSync('/etc/apt/sources.list')) {
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/m.exec(readFileSync('/etc/apt/sources.list', 'utf8'));
    if (m) return m[1];
  }
  return '';
}
const MIRROR = hostMirror();
const MIRROR_HOST = MIRROR ? new URL(MIRROR).host : '';
function redact(s) {
  let out = String(s);
  if (MIRROR) out = out.split(MIRROR).join('<mirror>');
  if (MIRROR_HOST) out = out.split(MIRROR_HOST).join('<mirror-host>');
  return out;
}
const log = (...a) => console.error(redact(`[bench ${new Date().toISOString().slice(11, 19)}] ${a.join(' ')}`));

// ---------------------------------------------------------------------------------------------
// Helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now() / 1000;
const round = (x, d = 1) => (x === undefined || x === null || Number.isNaN(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}
function percentile(xs, p) {
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.ceil((p / 100) * v.length) - 1)];
}

/** Runs a command to completion; output to a log file; resolves with exit code and seconds. */
function run(argv, { cwd = ROOT, env = process.env, logFile, check = true } = {}) {
  return new Promise((resolvePromise, reject) => {
    const fd = logFile ? openSync(logFile, 'a') : 'ignore';
    const t0 = now();
    const child = spawn(argv[0], argv.slice(1), { cwd, env, stdio: ['ignore', fd, fd] });
    child.on('error', reject);
    child.on('close', (code) => {
      if (typeof fd === 'number') closeSync(fd);
      const seconds = now() - t0;
      if (check && code !== 0) reject(new Error(`${argv[0]} exited with ${code} (log: ${logFile ?? 'none'})`));
      else resolvePromise({ code, seconds });
    });
  });
}

/** Bundles one TypeScript module of src/ with ncc (the project's own bundler) and imports it. */
async function bundle(entry, work) {
  const out = join(work, entry.replace(/[/.]/g, '_'));
  await run(['npx', 'ncc', 'build', join(ROOT, entry), '-o', out, '-q'], { logFile: join(work, 'ncc.log') });
  return import(pathToFileURL(join(out, 'index.js')).href);
}

function procStatus(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
function childrenOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Our pipeline

const HAVE_GNU_TIME = spawnSync('dpkg', ['-s', 'time'], { stdio: 'ignore' }).status === 0 && existsSync('/usr/bin/time');

async function runOurs(label, cacheDir, keep) {
  const work = mkdtempSync(join(tmpdir(), 'dvc-bench-ours-'));
  const out = join(work, 'out');
  const cli = [
    'node',
    'dist/cli/index.js',
    'run',
    '--working-directory',
    'examples/hello',
    '--installer',
    'mmdebstrap',
    '--install-built-packages',
    'true',
    '--upload-image',
    'never',
    '--output-dir',
    out,
  ];
  const timeFile = join(work, 'time.txt');
  const argv = HAVE_GNU_TIME ? ['/usr/bin/time', '-f', '%M', '-o', timeFile, ...cli] : cli;
  const logFile = join(work, 'cli.log');
  const fd = openSync(logFile, 'w');
  log(`${label}: our pipeline, cache ${cacheDir}`);
  const t0 = now();
  const child = spawn(argv[0], argv.slice(1), {
    cwd: ROOT,
    env: { ...process.env, DEBIAN_VM_CI_CACHE: cacheDir },
    stdio: ['ignore', fd, fd],
  });
  // VmHWM is the process's own peak RSS, monotonic: polling it until the process is gone loses nothing
  // but growth in the last poll interval.
  let vmHwmKiB = 0;
  let nodePid = HAVE_GNU_TIME ? undefined : child.pid;
  const poll = setInterval(() => {
    nodePid ??= childrenOf(child.pid)[0];
    if (nodePid) vmHwmKiB = Math.max(vmHwmKiB, procStatus(nodePid, 'VmHWM') ?? 0);
  }, 100);
  const code = await new Promise((r) => child.on('close', r));
  clearInterval(poll);
  closeSync(fd);
  const wall = now() - t0;
  const resultFile = join(out, 'result.json');
  const result = existsSync(resultFile) ? JSON.parse(readFileSync(resultFile, 'utf8')) : undefined;
  const stages = {};
  for (const s of result?.stages ?? []) stages[s.name] = s.seconds;
  let gossSeconds;
  const gossJson = join(out, 'goss/goss.json');
  if (existsSync(gossJson)) gossSeconds = JSON.parse(readFileSync(gossJson, 'utf8')).summary['total-duration'] / 1e9;
  const serialLog = join(out, 'serial.log');
  if (keep && existsSync(serialLog)) copyFileSync(serialLog, keep);
  const record = {
    label,
    exitCode: code,
    status: result?.status ?? 'no result.json',
    stages,
    bootSeconds: result?.bootSeconds ?? null,
    total: result?.seconds ?? null,
    wallSeconds: round(wall),
    gossOwnSeconds: round(gossSeconds, 3),
    maxRssKiB: {
      cliVmHWM: vmHwmKiB || null,
      gnuTimeMaxRss:
        HAVE_GNU_TIME && existsSync(timeFile) ? Number(readFileSync(timeFile, 'utf8').trim().split('\n').pop()) : null,
    },
    failed: (result?.stages ?? []).filter((s) => s.status === 'failed').map((s) => `${s.name}: ${redact(s.error ?? '')}`),
  };
  if (code !== 0) {
    log(`${label}: exit ${code}; log tail:\n${readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n')}`);
  }
  log(`${label}: ${record.status} in ${record.wallSeconds}s ${JSON.stringify(stages)} boot ${record.bootSeconds}s`);
  rmSync(work, { recursive: true, force: true });
  return record;
}

function stageRow(rec) {
  // boot: bootSeconds (QEMU start to the login prompt); the boot stage's own seconds are kept as bootStage.
  const row = {};
  for (const s of STAGES) row[s] = rec.stages[s] ?? null;
  row.bootStage = row.boot;
  row.boot = rec.bootSeconds ?? null;
  row.total = rec.total;
  // Until the CLI process exited: total plus whatever keeps the process alive after the run.
  row.wall = rec.wallSeconds;
  return row;
}

function medians(rows) {
  const keys = new Set(rows.flatMap((r) => Object.keys(r)));
  const m = {};
  for (const k of keys) m[k] = round(median(rows.map((r) => r[k])));
  return m;
}

// ---------------------------------------------------------------------------------------------
// 2. The same work, by hand

/** Build-Depends of debian/control, version constraints and alternatives dropped. */
function buildDepends(control) {
  const m = /^Build-Depends(?:-Arch|-Indep)?:\s*((?:.*\n?)(?:[ \t].*\n?)*)/gm;
  const deps = [];
  for (const x of control.matchAll(m)) {
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

async function waitFor(file, pattern, deadlineSeconds, intervalMs = 500) {
  const t0 = now();
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'latin1') : '';
    const m = pattern.exec(text);
    if (m) return m;
    if (now() - t0 > deadlineSeconds) throw new Error(`no ${pattern} in ${file} within ${deadlineSeconds}s`);
    await sleep(intervalMs);
  }
}

async function runPlain(label, mods, gossBinary) {
  const { mmdebstrapArgv, qemuArgv } = mods;
  const work = mkdtempSync(join(tmpdir(), 'dvc-bench-plain-'));
  const logFile = join(work, 'plain.log');
  const env = { PATH: CLEAN_PATH, LC_ALL: 'C.UTF-8', HOME: process.env.HOME ?? '/root', TMPDIR: work };
  const t = {};
  const tAll = now();
  log(`${label}: the same work without our orchestration (work dir ${work})`);
  try {
    // lint: shellcheck on the example's scripts (findings do not matter for timing).
    t.lint = (await run(['shellcheck', 'bin/hello-dvc', 'lib/common.sh'], { cwd: EXAMPLE, logFile, check: false })).seconds;

    // package: one mmdebstrap from scratch, buildd variant plus the build dependencies, dpkg-buildpackage in a hook.
    mkdirSync(join(work, 'pkg'));
    cpSync(EXAMPLE, join(work, 'pkg/source'), { recursive: true });
    const include = ['fakeroot', ...buildDepends(readFileSync(join(EXAMPLE, 'debian/control'), 'utf8'))];
    t.package = (
      await run(
        [
          'mmdebstrap',
          '--mode=unshare',
          '--variant=buildd',
          `--include=${include.join(',')}`,
          '--customize-hook=mkdir -p "$1/build"',
          '--customize-hook=copy-in source /build',
          '--customize-hook=chroot "$1" sh -c "cd /build/source && dpkg-buildpackage --no-sign --build=binary && mkdir /build/out && mv /build/*.deb /build/out/"',
          '--customize-hook=sync-out /build/out out',
          'trixie',
          '/dev/null',
          MIRROR,
        ].filter(Boolean),
        { cwd: join(work, 'pkg'), env, logFile },
      )
    ).seconds;
    const debs = readdirSync(join(work, 'pkg/out'))
      .filter((f) => f.endsWith('.deb'))
      .map((f) => join(work, 'pkg/out', f));
    if (!debs.length) throw new Error('the plain package build made no .deb');

    // install: our installer's own mmdebstrap command line (straight to the mirror, no apt cache), then mkfs.ext4 -d.
    const password = randomBytes(12).toString('hex');
    const files = join(work, 'files');
    const bootDir = join(work, 'boot');
    mkdirSync(files);
    mkdirSync(bootDir);
    writeFileSync(join(files, 'hostname'), 'debian\n');
    writeFileSync(join(files, 'hosts'), '127.0.0.1 localhost\n127.0.1.1 debian\n::1 localhost ip6-localhost ip6-loopback\n');
    writeFileSync(join(files, 'fstab'), '/dev/vda / ext4 rw,errors=remount-ro 0 1\n');
    writeFileSync(join(files, 'dhcp.network'), '[Match]\nName=eth* en*\n\n[Network]\nDHCP=yes\n');
    writeFileSync(join(files, 'password'), `root:${password}\n`, { mode: 0o600 });
    const config = { architecture: 'amd64', release: 'trixie', packages: [], mirror: MIRROR };
    const rootfs = join(work, 'rootfs'); // mke2fs before 1.47.1 reads a directory only
    const image = join(work, 'qemu.img');
    const t0 = now();
    await run(mmdebstrapArgv(config, { files, debs, target: rootfs, bootDir }), { env, logFile });
    await run(['truncate', '-s', String(3 * 1024 ** 3), image], { logFile });
    await run(['mkfs.ext4', '-q', '-F', '-L', 'dvc-root', '-d', rootfs, image], { logFile });
    await run(['rm', '-rf', '--one-file-system', rootfs], { logFile });
    t.install = now() - t0;
    const bootFiles = readdirSync(join(bootDir, 'boot'));
    const kernel = join(
      bootDir,
      'boot',
      bootFiles.find((f) => /^vmlinu[xz]-/.test(f)),
    );
    const initrd = join(
      bootDir,
      'boot',
      bootFiles.find((f) => /^initrd\.img-/.test(f)),
    );

    // boot: the same QEMU command line; serial log polled every 0.5 s for the login prompt.
    const vm = join(work, 'vm');
    const share = join(vm, 'share');
    mkdirSync(share, { recursive: true });
    copyFileSync(gossBinary, join(share, 'goss'));
    spawnSync('chmod', ['755', join(share, 'goss')]);
    copyFileSync(join(EXAMPLE, 'goss.yaml'), join(share, 'goss.yaml'));
    await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', image, join(vm, 'overlay.qcow2')], { logFile });
    const serialLog = join(vm, 'serial.log');
    const serialSocket = join(vm, 'serial.sock');
    const argv = qemuArgv({
      arch: 'amd64',
      accel: 'tcg',
      cpus: cpus().length,
      memoryMiB: 1024,
      firmware: 'bios',
      disk: join(vm, 'overlay.qcow2'),
      diskFormat: 'qcow2',
      direct: { kernel, initrd, append: 'root=/dev/vda rw net.ifnames=0 console=tty0 console=ttyS0,115200' },
      serialSocket,
      serialLog,
      monitorSocket: join(vm, 'monitor.sock'),
      pidFile: join(vm, 'qemu.pid'),
      share: { path: share, tag: 'dvc' },
    });
    const tBoot = now();
    const qemuLog = openSync(join(work, 'qemu.log'), 'w');
    const qemu = spawn(argv[0], argv.slice(1), { stdio: ['ignore', qemuLog, qemuLog] });
    let qemuExited = false;
    qemu.on('close', () => (qemuExited = true));
    // The socket is the console's input; its output we drop and read from the log file instead.
    let sock;
    for (let i = 0; !sock; i++) {
      sock = await new Promise((r) => {
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
      await waitFor(serialLog, /login: *$/m, 900);
      t.boot = now() - tBoot;

      // validate: log in on the console, mount the share, run goss.
      const tVal = now();
      const seen = () => readFileSync(serialLog, 'latin1').length;
      sock.write('root\n');
      await waitFor(serialLog, /Password: *$/m, 120);
      let mark = seen();
      sock.write(`${password}\n`);
      for (;;) {
        await sleep(500);
        if (/# *$/m.test(readFileSync(serialLog, 'latin1').slice(mark))) break;
        if (now() - tVal > 300) throw new Error('no shell prompt after login');
      }
      mark = seen();
      sock.write(
        'mkdir -p /mnt/dvc && mount -t 9p -o trans=virtio,version=9p2000.L dvc /mnt/dvc && cd /mnt/dvc && ./goss -g goss.yaml validate --format json > goss.json; echo "BENCH-DONE $?"\n',
      );
      for (;;) {
        await sleep(500);
        const m = /BENCH-DONE (\d+)/.exec(readFileSync(serialLog, 'latin1').slice(mark));
        if (m) {
          t.validateExit = Number(m[1]);
          break;
        }
        if (now() - tVal > 900) throw new Error('goss did not finish');
      }
      t.validate = now() - tVal;
      if (existsSync(join(share, 'goss.json'))) {
        t.gossOwn = JSON.parse(readFileSync(join(share, 'goss.json'), 'utf8')).summary['total-duration'] / 1e9;
      }
    } finally {
      sock.destroy();
      qemu.kill('SIGTERM');
      await new Promise((r) => (qemuExited ? r() : qemu.on('close', r)));
      closeSync(qemuLog);
    }
    t.total = now() - tAll;
    log(`${label}: ${JSON.stringify(Object.fromEntries(Object.entries(t).map(([k, v]) => [k, round(v)])))}`);
  } catch (e) {
    log(
      `${label} failed: ${e instanceof Error ? e.message : e}\n${existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : ''}`,
    );
    t.error = redact(e instanceof Error ? e.message : String(e));
  } finally {
    spawnSync('rm', ['-rf', '--one-file-system', work]);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// 3. Console watcher latency through a real unix socket

const FAILURE_LINES = {
  login: 'debian login: ',
  'no-bootable-device': 'No bootable device.\r\n',
  'uefi-no-boot-option':
    'BdsDxe: failed to load Boot0001 "UEFI QEMU HARDDISK QM00001 " from PciRoot(0x0)/Pci(0x1F,0x2): Not Found\r\n',
  'grub-rescue': 'grub rescue> ',
  'grub-error': 'error: you need to load the kernel first.\r\n',
  'kernel-panic': '[    2.914417] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r\n',
  'initramfs-shell': '(initramfs) ',
  'emergency-shell': 'You are in emergency mode. After logging in, type "journalctl -xb" to view system logs.\r\n',
  'maintenance-prompt': 'Give root password for maintenance\r\n(or press Control-D to continue): ',
};

async function watcherLatency(ConsoleWatcher, preambleText, samples, work) {
  const path = join(work, 'watcher.sock');
  let serverSide;
  const server = createServer((s) => (serverSide = s));
  await new Promise((r) => server.listen(path, r));
  const client = createConnection(path);
  await new Promise((r) => client.once('connect', r));
  while (!serverSide) await sleep(1);
  client.setEncoding('latin1');
  let watcher;
  let received = 0;
  let onData = () => undefined;
  client.on('data', (chunk) => {
    received += Buffer.byteLength(chunk, 'latin1');
    const events = watcher.push(chunk);
    onData(events);
  });
  const write = (text) =>
    new Promise((r) => {
      const target = received + Buffer.byteLength(text, 'latin1');
      onData = () => {
        if (received >= target) r();
      };
      serverSide.write(text, 'latin1');
    });
  const results = {};
  for (const [kind, line] of Object.entries(FAILURE_LINES)) {
    const us = [];
    for (let i = 0; i < samples + 20; i++) {
      watcher = new ConsoleWatcher();
      await write(preambleText); // not timed: the console up to the verdict line
      const timed = new Promise((r) => {
        onData = (events) => {
          const v = events.find((e) => e.type === 'login' || e.type === 'failure');
          if (v) r([process.hrtime.bigint(), v]);
        };
      });
      const t0 = process.hrtime.bigint();
      serverSide.write(line, 'latin1');
      const [t1, verdict] = await timed;
      const got = verdict.type === 'login' ? 'login' : verdict.failure;
      if (got !== kind) throw new Error(`watcher said ${got} for ${JSON.stringify(line)}, expected ${kind}`);
      if (i >= 20) us.push(Number(t1 - t0) / 1000); // the first 20 warm the JIT up
    }
    results[kind] = { medianUs: round(median(us)), p99Us: round(percentile(us, 99)), samples: us.length };
  }
  client.destroy();
  serverSide.destroy();
  server.close();
  return results;
}

// ---------------------------------------------------------------------------------------------
// Report

function table(headers, rows) {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padStart(w[i])).join(' | ')} |`;
  return [line(headers), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
const fmt = (x, d = 1) => (x === null || x === undefined ? '—' : x.toFixed(d));
const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? round(a / b, 2) : null);

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'dvc-bench-'));
  const startedAt = new Date().toISOString();
  log(`mirror from the host's apt sources: ${MIRROR ? '<mirror>' : '(none found)'}; GNU time: ${HAVE_GNU_TIME}`);
  log(`bundling src/vm/console.ts, src/vm/qemu.ts and src/install/mmdebstrap.ts with ncc`);
  const [{ ConsoleWatcher }, { qemuArgv }, { mmdebstrapArgv }] = await Promise.all([
    bundle('src/vm/console.ts', work),
    bundle('src/vm/qemu.ts', work),
    bundle('src/install/mmdebstrap.ts', work),
  ]);

  // The hand-written sequence first (a failure there shows early). goss: the cached Debian goss binary, the one our validate runs.
  const gossBinary = [process.env.DEBIAN_VM_CI_CACHE, join(process.env.HOME ?? '/root', '.cache/debian-vm-ci')]
    .filter(Boolean)
    .map((c) => join(c, 'goss-debian/0.4.9/amd64/goss'))
    .find((p) => existsSync(p));
  const plain = [];
  for (let i = 0; i < PLAIN_RUNS; i++) {
    if (!gossBinary) {
      log('no cached goss binary (goss-debian/0.4.9/amd64/goss): skipping the hand-written sequence');
      break;
    }
    plain.push(await runPlain(`plain ${i + 1}/${PLAIN_RUNS}`, { mmdebstrapArgv, qemuArgv }, gossBinary));
  }

  // Our pipeline: cold runs each with a fresh cache; warm runs reuse the first cold run's cache.
  const cold = [];
  const warm = [];
  const caches = [];
  const realSerial = join(work, 'serial.log');
  for (let i = 0; i < COLD_RUNS; i++) {
    const cache = mkdtempSync(join(tmpdir(), 'dvc-bench-cache-'));
    caches.push(cache);
    cold.push(await runOurs(`cold ${i + 1}/${COLD_RUNS}`, cache, realSerial));
  }
  const warmCache = caches[0] ?? process.env.DEBIAN_VM_CI_CACHE ?? join(process.env.HOME ?? '/root', '.cache/debian-vm-ci');
  for (let i = 0; i < WARM_RUNS; i++) warm.push(await runOurs(`warm ${i + 1}/${WARM_RUNS}`, warmCache, realSerial));

  for (const c of caches) rmSync(c, { recursive: true, force: true });

  // Watcher latency: the preamble is the real console of our last run up to its login prompt, if we have it.
  let preamble = '';
  let preambleSource = 'synthetic kernel lines';
  if (existsSync(realSerial)) {
    const text = readFileSync(realSerial, 'latin1');
    const cut = text.search(/\S+ login: ?/);
    preamble = (cut > 0 ? text.slice(0, cut) : text).replace(/[^\n]*$/, '');
    preambleSource = `the serial log of our last pipeline run up to its login prompt (${preamble.split('\n').length} lines)`;
  }
  if (!preamble) {
    for (let i = 0; i < 400; i++)
      preamble += `[    ${(i / 100).toFixed(6)}] synthetic boot line ${i}: pci 0000:00:${i % 32}.0 ok\r\n`;
  }
  log(`console watcher latency: ${WATCHER_SAMPLES} samples per kind; preamble: ${preambleSource}`);
  const watcher = await watcherLatency(ConsoleWatcher, preamble, WATCHER_SAMPLES, work);
  rmSync(work, { recursive: true, force: true });

  // Figures.
  const coldM = medians(cold.map(stageRow));
  const warmM = medians(warm.map(stageRow));
  const plainRows = plain.filter((p) => !p.error);
  const theirs = {};
  for (const k of [...COLUMNS, 'gossOwn']) theirs[k] = round(median(plainRows.map((p) => p[k] ?? null)), 2);
  theirs.wall = theirs.total; // the hand-written sequence ends with its last command
  const ratios = { cold: {}, warm: {} };
  for (const k of [...COLUMNS, 'wall']) {
    ratios.cold[k] = ratio(coldM[k], theirs[k]);
    ratios.warm[k] = ratio(warmM[k], theirs[k]);
  }
  const gossOwnOurs = round(median([...cold, ...warm].map((r) => r.gossOwnSeconds)), 3);
  const allRuns = [...cold, ...warm];
  const rss = {
    cliVmHWMKiB: median(allRuns.map((r) => r.maxRssKiB.cliVmHWM)),
    cliVmHWMMaxKiB: Math.max(0, ...allRuns.map((r) => r.maxRssKiB.cliVmHWM ?? 0)) || null,
    gnuTimeMaxRssKiB: median(allRuns.map((r) => r.maxRssKiB.gnuTimeMaxRss)),
  };

  const rows = [...COLUMNS, 'wall'].map((k) => [
    k,
    fmt(coldM[k]),
    fmt(warmM[k]),
    fmt(theirs[k], 2),
    ratios.cold[k] === null ? '—' : ratios.cold[k].toFixed(2),
    ratios.warm[k] === null ? '—' : ratios.warm[k].toFixed(2),
  ]);
  console.log(`\nmedian seconds per stage (TCG, ${cpus().length} cores, shared machine: noisy)`);
  console.log(`cold runs ${cold.length}, warm runs ${warm.length}, hand-written runs ${plainRows.length}\n`);
  console.log(table(['stage', 'ours cold', 'ours warm', 'theirs', 'cold/theirs', 'warm/theirs'], rows));
  console.log('wall = until the CLI process exited (total is result.json seconds, measured inside the run)');
  console.log(
    `\nboot = QEMU start to login prompt (bootSeconds); boot stage incl. overlay and QEMU start: cold ${fmt(coldM.bootStage)} s, warm ${fmt(warmM.bootStage)} s`,
  );
  console.log(`goss's own run time (goss.json total-duration): ours ${gossOwnOurs ?? '—'} s, theirs ${theirs.gossOwn ?? '—'} s`);
  console.log('\nconsole watcher latency, write on the server socket to verdict (µs)\n');
  console.log(
    table(
      ['kind', 'median µs', 'p99 µs', 'samples'],
      Object.entries(watcher).map(([k, v]) => [k, fmt(v.medianUs), fmt(v.p99Us), v.samples]),
    ),
  );
  console.log(
    `\npeak RSS of the CLI's node process (VmHWM, polled every 100 ms): median ${rss.cliVmHWMKiB ?? '—'} KiB, max ${rss.cliVmHWMMaxKiB ?? '—'} KiB`,
  );
  console.log(`GNU time %M (largest RSS of any process in the tree, QEMU included): median ${rss.gnuTimeMaxRssKiB ?? '—'} KiB`);

  const results = {
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: { cpus: cpus().length, node: process.version, accel: 'tcg (KVM present but unusable here)' },
    note: 'Medians of few runs on a shared 2-core machine: noisy. Seconds unless named otherwise. boot = bootSeconds (QEMU start to login prompt).',
    command:
      'node dist/cli/index.js run --working-directory examples/hello --installer mmdebstrap --install-built-packages true --upload-image never --output-dir <tmp>',
    counts: { cold: cold.length, warm: warm.length, plain: plainRows.length, watcherSamplesPerKind: WATCHER_SAMPLES },
    ours: { cold: coldM, warm: warmM, gossOwnSeconds: gossOwnOurs },
    theirs,
    ratio: ratios,
    watcherLatencyUs: watcher,
    watcherPreamble: preambleSource,
    peakRss: {
      ...rss,
      how: "cliVmHWM: VmHWM of the CLI's node process from /proc/<pid>/status, polled every 100 ms until it exits; gnuTimeMaxRss: /usr/bin/time -f %M around the CLI, which reports the largest RSS among the process and its waited-for descendants (QEMU, mmdebstrap)",
    },
    runs: { cold, warm, plain },
  };
  mkdirSync(dirname(opts.output), { recursive: true });
  writeFileSync(opts.output, redact(JSON.stringify(results, null, 2)) + '\n');
  log(`wrote ${opts.output}`);
}

main().catch((e) => {
  console.error(redact(e instanceof Error ? (e.stack ?? e.message) : String(e)));
  process.exit(1);
});
