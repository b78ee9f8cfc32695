/** Our pipeline, the README main job through the bundled CLI, timed from its own result.json. */
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
  renameSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { RunResult, StageName } from '../src/results.js';
import { log, now, redact, round, tail } from './util.js';

/** The flags of the README main job on the example: the plain sequence is built from the same Config. */
export const MAIN_JOB_FLAGS = [
  '--working-directory',
  'examples/hello',
  '--installer',
  'mmdebstrap',
  '--install-built-packages',
  'true',
  '--upload-image',
  'never',
] as const;

export const STAGES = [
  'accel',
  'lint',
  'package',
  'install',
  'boot',
  'validate',
  'publish',
] as const satisfies readonly StageName[];

export interface OursRecord {
  label: string;
  exitCode: number | null;
  status: string;
  /** Seconds per stage, from result.json. */
  stages: Partial<Record<StageName, number>>;
  /** QEMU start to the login prompt. */
  bootSeconds: number | null;
  /** result.json's seconds: measured inside the run. */
  total: number | null;
  /** Until the CLI process exited. */
  wallSeconds: number | null;
  /** goss.json's total-duration. */
  gossOwnSeconds: number | null;
  maxRssKiB: { cliVmHWM: number | null; gnuTimeMaxRss: number | null };
  failed: string[];
}

const HAVE_GNU_TIME = spawnSync('dpkg', ['-s', 'time'], { stdio: 'ignore' }).status === 0 && existsSync('/usr/bin/time');

function procStatusKiB(pid: number, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** issue 17's done-when run: the main job for arm64, emulated on an amd64 host (native on an arm64 one). */
export const ARM64_FLAGS = ['--architecture', 'arm64', '--firmware', 'uefi'] as const;

/**
 * One run of the main job (plus `extraFlags`) with DEBIAN_VM_CI_CACHE=cacheDir; its serial log copied to keepSerial,
 * its whole output directory moved to keepOutput when that is given (the smoke test reads the run's reports there).
 */
export async function runOurs(
  root: string,
  label: string,
  cacheDir: string,
  keepSerial: string,
  extraFlags: readonly string[] = [],
  keepOutput?: string,
): Promise<OursRecord> {
  const work = mkdtempSync(join(tmpdir(), 'dvc-bench-ours-'));
  const out = join(work, 'out');
  const cli = ['node', 'dist/cli/index.js', 'run', ...MAIN_JOB_FLAGS, ...extraFlags, '--output-dir', out];
  const timeFile = join(work, 'time.txt');
  const argv = HAVE_GNU_TIME ? ['/usr/bin/time', '-f', '%M', '-o', timeFile, ...cli] : cli;
  const logFile = join(work, 'cli.log');
  const fd = openSync(logFile, 'w');
  log(`${label}: our pipeline, cache ${cacheDir}`);
  const t0 = now();
  const child = spawn(argv[0], argv.slice(1), {
    cwd: root,
    env: { ...process.env, DEBIAN_VM_CI_CACHE: cacheDir },
    stdio: ['ignore', fd, fd],
  });
  // VmHWM is the process's own peak RSS, monotonic: polling it until the process is gone loses nothing but
  // growth in the last poll interval.
  let vmHwmKiB = 0;
  let nodePid = HAVE_GNU_TIME ? undefined : child.pid;
  const poll = setInterval(() => {
    if (child.pid) nodePid ??= childrenOf(child.pid)[0];
    if (nodePid) vmHwmKiB = Math.max(vmHwmKiB, procStatusKiB(nodePid, 'VmHWM') ?? 0);
  }, 100);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  clearInterval(poll);
  closeSync(fd);
  const wall = now() - t0;
  const resultFile = join(out, 'result.json');
  const result = existsSync(resultFile) ? (JSON.parse(readFileSync(resultFile, 'utf8')) as RunResult) : undefined;
  const stages: Partial<Record<StageName, number>> = {};
  for (const s of result?.stages ?? []) stages[s.name] = s.seconds;
  const gossJson = join(out, 'goss/goss.json');
  const gossSeconds = existsSync(gossJson)
    ? (JSON.parse(readFileSync(gossJson, 'utf8')) as { summary: { 'total-duration': number } }).summary['total-duration'] / 1e9
    : null;
  const serialLog = join(out, 'serial.log');
  if (existsSync(serialLog)) copyFileSync(serialLog, keepSerial);
  const record: OursRecord = {
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
  if (code !== 0) log(`${label}: exit ${code}; log tail:\n${tail(logFile)}`);
  log(`${label}: ${record.status} in ${record.wallSeconds}s ${JSON.stringify(stages)} boot ${record.bootSeconds}s`);
  if (keepOutput && existsSync(out)) keep(out, keepOutput);
  rmSync(work, { recursive: true, force: true });
  return record;
}

/** Moves dir to dest (which must not exist), copying across file systems. */
function keep(dir: string, dest: string): void {
  mkdirSync(dirname(dest), { recursive: true });
  try {
    renameSync(dir, dest);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    cpSync(dir, dest, { recursive: true, verbatimSymlinks: true });
  }
  log(`its output directory kept in ${dest}`);
}

/** A run's row of the table: boot is bootSeconds (QEMU start to login); the boot stage's own seconds are bootStage. */
export function stageRow(rec: OursRecord): Record<string, number | null> {
  const row: Record<string, number | null> = {};
  for (const s of STAGES) row[s] = rec.stages[s] ?? null;
  row.bootStage = row.boot;
  row.boot = rec.bootSeconds;
  row.total = rec.total;
  row.wall = rec.wallSeconds;
  return row;
}
