import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { mountsBelow, processesOf, SCRATCH_NAME } from './leftovers.js';

/*
 * Running the product as GitHub's hosted runners run every step: a non-root user with passwordless
 * sudo, a checkout below its home, RUNNER_TEMP below that. Root hides the bugs this finds (files a
 * sudo'd tool leaves root-owned, sub-uids of an unshare'd tool refused by a 0700 directory, a
 * non-root process unable to signal a sudo'd one).
 *
 * The suite runs as root on Debian CI machines and as `runner` (with sudo) on GitHub's runners: every
 * privileged step here goes through asRoot(), and every file below the user's home is read through it,
 * because that home is 0750 as on the runners.
 */

export const ROOT = resolve(import.meta.dirname, '../..');
export const RUNNER_USER = 'dvc-runner';
export const NO_USERNS = join(import.meta.dirname, 'no-userns.py');
const IS_ROOT = process.getuid?.() === 0;
/** The PATH of a login shell, without what root's profile adds here (pyenv's python3 shadows Debian's). */
const PLAIN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface RunnerUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** <home>/work: where the runner checks repositories out, <work>/<repo>/<repo>. */
  work: string;
  /** <home>/work/_temp, the runner's RUNNER_TEMP. */
  runnerTemp: string;
}

/** argv run as root: directly when we are root, else through passwordless sudo (GitHub's runners). */
export function asRoot(argv: readonly string[]): string[] {
  return IS_ROOT ? [...argv] : ['sudo', '--non-interactive', '--', ...argv];
}

/** Runs argv as root and returns its stdout; throws with its stderr. Every call has a deadline. */
export function root(argv: readonly string[], opts: { input?: string | Buffer; timeoutSeconds?: number } = {}): string {
  const [cmd, ...args] = asRoot(argv);
  const r = spawnSync(cmd, args, {
    input: opts.input,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: (opts.timeoutSeconds ?? 120) * 1000,
    killSignal: 'SIGKILL',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.error || r.status !== 0) {
    throw new Error(`${argv.join(' ')}: ${r.error?.message ?? `exit ${r.status ?? r.signal}`}\n${r.stderr}`.trim());
  }
  return r.stdout;
}

/** A file below the user's home (0750: not readable by the test process unless it is root). */
export function readAsRoot(path: string): string {
  return IS_ROOT ? readFileSync(path, 'utf8') : root(['cat', '--', path]);
}

export function existsAsRoot(path: string): boolean {
  return IS_ROOT ? existsSync(path) : spawnSync('sudo', ['--non-interactive', 'test', '-e', path]).status === 0;
}

function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `PATH=${PLAIN_PATH} command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** apt-get install, with one `apt-get update` when the package lists are stale or missing. */
export function aptInstall(packages: readonly string[]): void {
  const install = ['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...packages];
  try {
    root(install, { timeoutSeconds: 600 });
  } catch {
    root(['apt-get', 'update', '-q'], { timeoutSeconds: 600 });
    root(install, { timeoutSeconds: 600 });
  }
}

/** The first sub-id after every range in /etc/subuid and /etc/subgid (and not below useradd's SUB_UID_MIN). */
function freeSubidStart(count: number): number {
  let next = 100_000;
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    for (const [, start, n] of text.matchAll(/^[^:\n]+:(\d+):(\d+)$/gm)) next = Math.max(next, Number(start) + Number(n));
  }
  return Math.ceil(next / count) * count;
}

function hasSubids(name: string): boolean {
  return ['/etc/subuid', '/etc/subgid'].every(
    (file) =>
      existsSync(file) &&
      readFileSync(file, 'utf8')
        .split('\n')
        .some((l) => l.startsWith(`${name}:`)),
  );
}

/**
 * Creates the user when absent: a home directory, /etc/subuid and /etc/subgid ranges (as GitHub's image
 * has for `runner`; mmdebstrap's unshare mode maps them), passwordless sudo from /etc/sudoers.d.
 * Installs sudo and uidmap when missing. Idempotent: every suite run calls it.
 */
export function ensureRunnerUser(name = RUNNER_USER): RunnerUser {
  if (!IS_ROOT && !hasCommand('sudo')) throw new Error('the as-runner tests need root or passwordless sudo');
  const missing = [...(hasCommand('sudo') ? [] : ['sudo']), ...(hasCommand('newuidmap') ? [] : ['uidmap'])];
  if (missing.length) aptInstall(missing);
  if (spawnSync('getent', ['passwd', name], { stdio: 'ignore' }).status !== 0) {
    root(['useradd', '--create-home', '--user-group', '--shell', '/bin/bash', name]);
  }
  if (!hasSubids(name)) {
    const start = freeSubidStart(65_536);
    const range = `${start}-${start + 65_535}`;
    root(['usermod', '--add-subuids', range, '--add-subgids', range, name]);
  }
  const rule = `/etc/sudoers.d/${name}`;
  const staged = `/etc/sudoers.d/.${name}.new`;
  // sudo ignores files in sudoers.d whose name contains a dot: the staged copy is inert until renamed.
  root(['sh', '-c', 'cat > "$1" && chmod 0440 "$1" && visudo -cqf "$1" && mv "$1" "$2"', 'sh', staged, rule], {
    input: `${name} ALL=(ALL:ALL) NOPASSWD: ALL\n`,
  });
  const [, , uid, gid, , home] = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim().split(':');
  const user: RunnerUser = {
    name,
    uid: Number(uid),
    gid: Number(gid),
    home,
    work: join(home, 'work'),
    runnerTemp: join(home, 'work', '_temp'),
  };
  // Ubuntu's default since 21.04 (HOME_MODE 0750), and what the runner images give `runner`
  // (actions/runner#4083): a sub-uid of an unshare'd tool cannot enter it.
  root(['chmod', '0750', home]);
  root(['install', '-d', '-o', name, '-g', String(user.gid), '-m', '0755', user.work, user.runnerTemp]);
  const sudo = runAsSync(user, ['sudo', '--non-interactive', 'true'], { timeoutSeconds: 30 });
  if (sudo.status !== 0) throw new Error(`${name} has no passwordless sudo: ${sudo.out}`);
  return user;
}

const clones = new Set<string>();

/**
 * A checkout of this working tree below the user's home, owned by the user, the way actions/checkout
 * puts a repository at <home>/work/<repo>/<repo> (here <repo>-<pid>/<repo>).
 *
 * A `git clone` alone would test the committed HEAD, but the tests must run the working tree's dist/
 * (rebuilt, maybe not committed yet). So: clone for .git (the runner's checkout has one, and lint
 * finds the repository top through it), then lay the working tree's files over it, tracked and
 * untracked-but-not-ignored alike (`git ls-files --cached --others --exclude-standard`, files deleted
 * in the working tree removed), and reset the index so that `git status` shows the same changes.
 * DVC_DIST_DIR replaces the clone's dist/ with a private build.
 *
 * nodeModules 'hardlink': node_modules is 670 MB and `npm ci` costs 33 s here (and the network);
 * `cp -al` makes it in a second. The links share inodes with the root checkout's node_modules, so
 * nothing below it is chowned: the user reads it, and a stray write fails instead of changing the
 * original. The bundled dist/ needs no node_modules; scripts/example.sh only checks that it is fresh.
 */
export function cloneCheckout(user: RunnerUser, opts: { nodeModules: 'hardlink' | 'none' }): string {
  const repo = basename(ROOT);
  // One checkout per test process (<repo>-<pid>/<repo>): two vitest runs on one machine would otherwise
  // wipe each other's checkout, output dirs included, mid-run. Those of dead processes are removed here.
  const outer = join(user.work, `${repo}-${process.pid}`);
  const dir = join(outer, repo);
  for (const [name] of entries(user.work)) {
    const pid = name.startsWith(`${repo}-`) ? Number(name.slice(repo.length + 1)) : NaN;
    if (Number.isInteger(pid) && pid > 0 && !existsSync(`/proc/${pid}`))
      root(['rm', '-rf', '--one-file-system', join(user.work, name)]);
  }
  if (!clones.has(outer)) {
    clones.add(outer);
    // Each checkout's output dirs hold 3 GiB images. vitest may end a worker without its 'exit' event:
    // test files call removeCheckout in afterAll, and the sweep above catches what a crash left.
    const [cmd, ...args] = asRoot(['rm', '-rf', '--one-file-system', outer]);
    process.on('exit', () => spawnSync(cmd, args, { stdio: 'ignore', timeout: 120_000 }));
  }
  root(['rm', '-rf', '--one-file-system', dir]);
  root(['install', '-d', '-o', user.name, '-g', String(user.gid), outer]);
  root(['git', '-c', 'safe.directory=*', 'clone', '--quiet', '--no-hardlinks', '--no-checkout', ROOT, dir], {
    timeoutSeconds: 300,
  });
  const listed = execFileSync('git', ['-C', ROOT, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    encoding: 'utf8',
  });
  const files = [...new Set(listed.split('\0').filter(Boolean))].filter((f) => {
    try {
      lstatSync(join(ROOT, f));
      return true;
    } catch {
      return false; // deleted in the working tree
    }
  });
  const extract = asRoot(['tar', '-C', dir, '-xpf', '-']).join(' ');
  execFileSync('sh', ['-c', `tar -C "$1" --null --no-recursion -T - -cf - | ${extract}`, 'sh', ROOT], {
    input: files.join('\0'),
    timeout: 300_000,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  root(['git', '-c', 'safe.directory=*', '-C', dir, 'reset', '--quiet']);
  // A private build under test (`node scripts/build.mjs /tmp/dist-e`), as dist-action.test.ts takes it.
  const dist = process.env.DVC_DIST_DIR;
  if (dist && resolve(dist) !== join(ROOT, 'dist')) {
    root(['rm', '-rf', join(dir, 'dist')]);
    root(['cp', '-r', resolve(dist), join(dir, 'dist')]);
  }
  root(['chown', '-R', `${user.name}:${user.gid}`, dir]);
  for (const entry of ['cli', 'main', 'post']) {
    // scripts/build.mjs empties dist/ first: a build running meanwhile leaves the copy without it.
    if (!existsAsRoot(join(dir, 'dist', entry, 'index.js')))
      throw new Error(`the copy of ${ROOT} in ${dir} has no dist/${entry}/index.js (was dist/ being rebuilt?)`);
  }
  if (opts.nodeModules === 'hardlink' && existsSync(join(ROOT, 'node_modules'))) {
    try {
      root(['cp', '-al', join(ROOT, 'node_modules'), join(dir, 'node_modules')], { timeoutSeconds: 300 });
    } catch {
      // Another file system (EXDEV): a real copy, the user's own.
      root(['cp', '-a', join(ROOT, 'node_modules'), join(dir, 'node_modules')], { timeoutSeconds: 600 });
      root(['chown', '-R', `${user.name}:${user.gid}`, join(dir, 'node_modules')]);
    }
  }
  return dir;
}

/** Removes a checkout made by cloneCheckout (its <repo>-<pid> directory), output dirs and images included. */
export function removeCheckout(dir: string | undefined): void {
  if (dir) root(['rm', '-rf', '--one-file-system', resolve(dir, '..')], { timeoutSeconds: 300 });
}

/** The environment a hosted runner gives a step, without anything of the process running the tests. */
export function runnerEnv(user: RunnerUser, extra: Record<string, string> = {}): Record<string, string> {
  return {
    HOME: user.home,
    USER: user.name,
    LOGNAME: user.name,
    SHELL: '/bin/bash',
    PATH: `${user.home}/.local/bin:${PLAIN_PATH}`,
    LANG: 'C.UTF-8',
    RUNNER_TEMP: user.runnerTemp,
    ...extra,
  };
}

export interface UserRun {
  /** The exit status; 128 + signal number when killed; -1 when it could not start. */
  status: number;
  out: string;
  seconds: number;
  timedOut: boolean;
}

export interface UserRunOptions {
  cwd?: string;
  /** The whole environment of the command (runnerEnv by default): nothing is inherited. */
  env?: Record<string, string>;
  /** A hang fails the test: the whole process tree is killed at the deadline. */
  timeoutSeconds: number;
  /** No process of the command, root included, can create a user namespace (no-userns.py). */
  noUserns?: boolean;
  /** Each chunk of output as it comes, for a live log. */
  onOutput?: (chunk: string) => void;
}

function userArgv(user: RunnerUser, argv: readonly string[], opts: UserRunOptions): string[] {
  const env = Object.entries(opts.env ?? runnerEnv(user)).map(([k, v]) => `${k}=${v}`);
  const inner = [
    'sudo',
    '--non-interactive',
    `--user=${user.name}`,
    '--',
    'env',
    '-i',
    ...(opts.cwd ? [`--chdir=${opts.cwd}`] : []),
    ...env,
    ...argv,
  ];
  return opts.noUserns ? asRoot(['/usr/bin/python3', NO_USERNS, ...inner]) : inner;
}

/** Short commands (probes, set-up) as the user, synchronously; a deadline kills sudo and its child. */
export function runAsSync(
  user: RunnerUser,
  argv: readonly string[],
  opts: UserRunOptions,
): { status: number; out: string; timedOut: boolean } {
  const [cmd, ...args] = userArgv(user, argv, opts);
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: opts.timeoutSeconds * 1000,
    killSignal: 'SIGKILL',
    maxBuffer: 64 * 1024 * 1024,
  });
  return {
    status: r.status ?? -1,
    out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}`,
    timedOut: (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT',
  };
}

/** pid and every descendant, children first found by walking /proc (sudo's children are in other sessions). */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(p)]);
    } catch {
      /* exited */
    }
  }
  const tree: number[] = [];
  const visit = (p: number): void => {
    tree.push(p);
    for (const c of children.get(p) ?? []) visit(c);
  };
  visit(pid);
  return tree;
}

function killTree(pid: number, signal: 'TERM' | 'KILL', user: RunnerUser): void {
  // The user's processes that left the tree (daemonized, reparented) go too: the user is the tests' own.
  const strays = processesOf(user, []).map((line) => Number(line.split(' ')[0]));
  // The tree's sudo'd members are root's: only root may signal them.
  const [cmd, ...args] = asRoot(['kill', `-${signal}`, ...new Set([...processTree(pid), ...strays].map(String))]);
  spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
}

/**
 * A long command (a whole pipeline run) as the user, with the runner-like environment. At the deadline
 * the whole tree gets SIGTERM (the product's own cleanup), then SIGKILL 30 s later, and the run resolves
 * with timedOut set, so that a hang fails its test instead of the suite.
 */
export function runAs(user: RunnerUser, argv: readonly string[], opts: UserRunOptions): Promise<UserRun> {
  const started = performance.now();
  const [cmd, ...args] = userArgv(user, argv, opts);
  return new Promise((done) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let timedOut = false;
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (status: number): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      done({ status, out, seconds: Math.round((performance.now() - started) / 100) / 10, timedOut });
    };
    for (const s of [child.stdout, child.stderr]) {
      s.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        opts.onOutput?.(d);
      });
    }
    timers.push(
      setTimeout(() => {
        timedOut = true;
        out += `\n[runner-user] no exit within ${opts.timeoutSeconds}s: SIGTERM to the process tree\n`;
        if (child.pid) killTree(child.pid, 'TERM', user);
        timers.push(
          setTimeout(() => {
            if (child.pid) killTree(child.pid, 'KILL', user);
            // A grandchild that escaped the tree may hold the pipes open: do not wait for it.
            timers.push(setTimeout(() => finish(child.exitCode ?? 137), 10_000));
          }, 30_000),
        );
      }, opts.timeoutSeconds * 1000),
    );
    child.on('error', (e) => {
      out += `\n${e.message}`;
      finish(-1);
    });
    const status = (code: number | null, signal: NodeJS.Signals | null): number =>
      code ?? (signal ? 128 + (signalNumber(signal) ?? 0) : -1);
    child.on('close', (code, signal) => finish(status(code, signal)));
    // A process left running in the background keeps the output pipes open after the command exits:
    // the run is over anyway, and the leftover checks name that process.
    child.on('exit', (code, signal) =>
      timers.push(
        setTimeout(() => {
          out += '\n[runner-user] the command exited, but something it started still holds its output open\n';
          finish(status(code, signal));
        }, 5_000),
      ),
    );
  });
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal];
}

/** Loads nothing but checks that no-userns.py can run here (python3-seccomp, installed when missing). */
export function ensureNoUsernsLauncher(): void {
  const probe = (): boolean => spawnSync('/usr/bin/python3', ['-c', 'import seccomp'], { stdio: 'ignore' }).status === 0;
  if (!probe()) aptInstall(['python3-seccomp']);
  if (!probe()) throw new Error('python3-seccomp is not importable by /usr/bin/python3 after apt-get install');
}

/** Every file and directory below dir (dir included) not owned by the user: "owner:group mode path". */
export function notOwnedBy(user: RunnerUser, dir: string): string[] {
  return root(['find', dir, '!', '-uid', String(user.uid), '-printf', '%u:%g %m %p\\n'], { timeoutSeconds: 300 })
    .split('\n')
    .filter(Boolean);
}

/** Entries of dir as [name, owner uid], read as root (the user's RUNNER_TEMP is below a 0750 home). */
export function entries(dir: string): [string, number][] {
  try {
    return root(['find', dir, '-mindepth', '1', '-maxdepth', '1', '-printf', '%f\\t%U\\n'])
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t'))
      .map(([name, uid]) => [name, Number(uid)]);
  } catch {
    return [];
  }
}

/** The scratch directories where a run may leave some: the user's RUNNER_TEMP, /tmp (its TMPDIR is unset) and /dev/shm. */
export function scratchRoots(user: RunnerUser): string[] {
  return [user.runnerTemp, '/tmp', '/dev/shm'];
}

/** The scratch entries there before a run: the check after it reports only what appeared meanwhile. */
export function scratchSnapshot(user: RunnerUser): Set<string> {
  return new Set(scratchRoots(user).flatMap((d) => entries(d).map(([n]) => `${d}/${n}`)));
}

export interface Leftovers {
  processes: string[];
  mounts: string[];
  scratch: string[];
}

/**
 * What a finished run left behind: processes of the user or started through sudo by it, mounts below
 * its home or the scratch directories, and scratch directories (dvc-*, debian-vm-ci-package-*,
 * mmdebstrap.*) that were not there before the run. A run's QEMU or sudo'd cleanup may need a moment
 * after the main process is gone: processes get a few seconds' grace.
 */
export async function leftovers(user: RunnerUser, before: Set<string>, paths: readonly string[] = []): Promise<Leftovers> {
  let processes = processesOf(user, [user.home, ...paths]);
  for (let i = 0; i < 10 && processes.length; i++) {
    await new Promise((r) => setTimeout(r, 500));
    processes = processesOf(user, [user.home, ...paths]);
  }
  // Another user's entries are another run's (a developer's own as-runner session). Root's in /tmp and
  // /dev/shm: the tests' own dvc-* directories of a concurrent root vitest run are not this run's; what a
  // sudo'd tool of this run leaves there has mmdebstrap's or the package stage's name, and persists.
  const ours = (dir: string, name: string, uid: number): boolean =>
    uid === user.uid || (uid === 0 && (dir === user.runnerTemp || /^(debian-vm-ci-package-|mmdebstrap\.)/.test(name)));
  const candidates = (): string[] =>
    scratchRoots(user).flatMap((d) =>
      entries(d)
        .filter(([name, uid]) => SCRATCH_NAME.test(name) && !before.has(`${d}/${name}`) && ours(d, name, uid))
        .map(([name, uid]) => `${d}/${name} (uid ${uid})`),
    );
  let scratch = candidates();
  if (scratch.length) {
    await new Promise((r) => setTimeout(r, 5_000));
    const still = new Set(candidates());
    scratch = scratch.filter((s) => still.has(s));
  }
  // Only below paths of this run: a root test run elsewhere on the machine may have its own mmdebstrap mounts in /tmp.
  const mounts = mountsBelow([user.home, ...paths, ...scratch.map((s) => s.replace(/ \(uid \d+\)$/, ''))]);
  return { processes, mounts, scratch };
}
