/**
 * Benchmark of the full pipeline on examples/hello (npm run bench; docs/performance.md says what it measures).
 *
 * 1. Our pipeline (the README main job), cold (an empty DEBIAN_VM_CI_CACHE) and warm (the cold run's caches, or the
 *    developer's cache without a cold run): seconds per stage from result.json.
 * 2. The same work as a hand-written CI script does it (plain.ts), then ours / theirs per stage, and whether validate
 *    meets its target: at most 1.5 × the hand-written login and goss, plus the power-off.
 * 3. The console watcher's latency through a real unix socket, per verdict kind.
 * 4. The CLI process's peak memory.
 *
 * Figures go to --output only when every run of both halves passed; otherwise to build/bench-failed.json, exit 1.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/config.js';
import { cacheDirectory, cliInputs, parseContext } from '../src/entry.js';
import { ARM64_FLAGS, MAIN_JOB_FLAGS, runOurs, stageRow, STAGES, type OursRecord } from './ours.js';
import { runPlain, type PlainRecord } from './plain.js';
import { log, median, MIRROR, ratio, redact, round } from './util.js';
import { watcherLatency } from './watcher.js';

/** The project root: bundled, this file runs from build/bench/. */
function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'action.yml'))) {
    if (dirname(dir) === dir) throw new Error('action.yml not found above the benchmark');
    dir = dirname(dir);
  }
  return dir;
}
const ROOT = projectRoot();
const EXAMPLE = join(ROOT, 'examples/hello');
const COLUMNS = [...STAGES, 'total'] as const;
/** validate's target (issue 14): at most this many times the hand-written login and goss, plus the power-off. */
const VALIDATE_TARGET_FACTOR = 1.5;

const USAGE = `usage: npm run bench -- [--runs N] [--cold-runs N] [--warm-runs N] [--plain-runs N]
                      [--arm64-runs N] [--watcher-samples N] [--skip-pipeline] [--skip-plain] [--output FILE]
                      [--keep-output DIR]
  --runs N sets cold, warm and plain runs at once (defaults: 1 cold, 3 warm, 1 plain).
  --arm64-runs N adds N runs of the main job for arm64 (UEFI) with the warm cache (default 0: under emulation
  on an amd64 host one takes 20 to 40 minutes), shown next to the amd64 warm runs.
  --output defaults to bench/results.json when both halves run, build/bench-results.json otherwise.
  --keep-output DIR moves the first warm run's output directory (reports, serial log, image) to DIR, which must not exist.`;

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string' },
    'cold-runs': { type: 'string' },
    'warm-runs': { type: 'string' },
    'plain-runs': { type: 'string' },
    'arm64-runs': { type: 'string', default: '0' },
    'watcher-samples': { type: 'string', default: '300' },
    'skip-pipeline': { type: 'boolean', default: false },
    'skip-plain': { type: 'boolean', default: false },
    output: { type: 'string' },
    'keep-output': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

function count(name: 'cold-runs' | 'warm-runs' | 'plain-runs' | 'arm64-runs' | 'watcher-samples', fallback: number): number {
  const v = opts[name] ?? (name === 'watcher-samples' || name === 'arm64-runs' ? undefined : opts.runs);
  const n = v === undefined ? fallback : Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, got ${v}`);
  return n;
}

function table(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells: readonly unknown[]): string => `| ${cells.map((c, i) => String(c).padStart(w[i])).join(' | ')} |`;
  return [line(headers), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
const fmt = (x: number | null | undefined, d = 1): string => (x === null || x === undefined ? '—' : x.toFixed(d));

function medians(rows: readonly Record<string, number | null>[]): Record<string, number | null> {
  const keys = new Set(rows.flatMap((r) => Object.keys(r)));
  const m: Record<string, number | null> = {};
  for (const k of keys) m[k] = round(median(rows.map((r) => r[k])));
  return m;
}

async function main(): Promise<number> {
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  const coldRuns = opts['skip-pipeline'] ? 0 : count('cold-runs', 1);
  const warmRuns = opts['skip-pipeline'] ? 0 : count('warm-runs', 3);
  const plainRuns = opts['skip-plain'] ? 0 : count('plain-runs', 1);
  const arm64Runs = opts['skip-pipeline'] ? 0 : count('arm64-runs', 0);
  const watcherSamples = count('watcher-samples', 300);
  const bothHalves = coldRuns + warmRuns > 0 && plainRuns > 0;
  const output = resolve(opts.output ?? join(ROOT, bothHalves ? 'bench/results.json' : 'build/bench-results.json'));
  const keepOutput = opts['keep-output'] === undefined ? undefined : resolve(opts['keep-output']);
  if (keepOutput && existsSync(keepOutput)) throw new Error(`--keep-output ${keepOutput} exists already`);
  const work = mkdtempSync(join(tmpdir(), 'dvc-bench-'));
  const startedAt = new Date().toISOString();
  log(`mirror from the host's apt sources: ${MIRROR ? '<mirror>' : '(none found)'}`);

  // Our pipeline first: cold runs each with a fresh cache, warm runs with the first cold run's (or the developer's).
  const cold: OursRecord[] = [];
  const warm: OursRecord[] = [];
  const caches: string[] = [];
  const realSerial = join(work, 'serial.log');
  for (let i = 0; i < coldRuns; i++) {
    const cache = mkdtempSync(join(tmpdir(), 'dvc-bench-cache-'));
    caches.push(cache);
    cold.push(await runOurs(ROOT, `cold ${i + 1}/${coldRuns}`, cache, realSerial));
  }
  const warmCache = caches[0] ?? cacheDirectory();
  for (let i = 0; i < warmRuns; i++)
    warm.push(await runOurs(ROOT, `warm ${i + 1}/${warmRuns}`, warmCache, realSerial, [], i === 0 ? keepOutput : undefined));
  const arm64: OursRecord[] = [];
  for (let i = 0; i < arm64Runs; i++)
    arm64.push(await runOurs(ROOT, `arm64 ${i + 1}/${arm64Runs}`, warmCache, join(work, 'serial-arm64.log'), ARM64_FLAGS));

  // The hand-written sequence, with the Config ours ran with (the same flags through the product's parser) and
  // the goss binary ours fetched into its cache.
  const config = parseConfig(cliInputs([...MAIN_JOB_FLAGS]), parseContext(ROOT, join(work, 'unused-output')));
  const plain: PlainRecord[] = [];
  for (let i = 0; i < plainRuns; i++)
    plain.push(await runPlain(EXAMPLE, `plain ${i + 1}/${plainRuns}`, config, warmCache, join(ROOT, 'build')));
  for (const c of caches) rmSync(c, { recursive: true, force: true });

  // Watcher latency: the preamble is the real console of our last run up to its login prompt, if there is one.
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
  log(`console watcher latency: ${watcherSamples} samples per kind; preamble: ${preambleSource}`);
  const watcher = await watcherLatency(preamble, watcherSamples, work);
  rmSync(work, { recursive: true, force: true });

  // Figures.
  const coldM = medians(cold.map(stageRow));
  const warmM = medians(warm.map(stageRow));
  const arm64M = medians(arm64.map(stageRow));
  const plainOk = plain.filter((p) => !p.error);
  const theirs: Record<string, number | null> = {};
  for (const k of [...COLUMNS, 'gossOwn', 'powerOff'] as const)
    theirs[k] = round(median(plainOk.map((p) => p[k as keyof PlainRecord] as number)), 2);
  theirs.wall = theirs.total; // the hand-written sequence ends with its last command
  const ratios: { cold: Record<string, number | null>; warm: Record<string, number | null> } = { cold: {}, warm: {} };
  for (const k of [...COLUMNS, 'wall']) {
    ratios.cold[k] = ratio(coldM[k], theirs[k]);
    ratios.warm[k] = ratio(warmM[k], theirs[k]);
  }
  const ours = [...cold, ...warm];
  const allOurs = [...ours, ...arm64];
  const gossOwnOurs = round(median(ours.map((r) => r.gossOwnSeconds)), 3);
  const oursValidate = median(ours.map((r) => r.stages.validate));
  const validateLimit =
    theirs.validate !== null && theirs.powerOff !== null
      ? round(VALIDATE_TARGET_FACTOR * theirs.validate + theirs.powerOff, 2)
      : null;
  const validateTarget = {
    rule: `ours validate (login, goss, power-off) <= ${VALIDATE_TARGET_FACTOR} x theirs (login, goss) + theirs power-off`,
    ours: round(oursValidate),
    limit: validateLimit,
    met: oursValidate !== null && validateLimit !== null ? oursValidate <= validateLimit : null,
  };
  const rss = {
    cliVmHWMKiB: median(ours.map((r) => r.maxRssKiB.cliVmHWM)),
    cliVmHWMMaxKiB: Math.max(0, ...ours.map((r) => r.maxRssKiB.cliVmHWM ?? 0)) || null,
    gnuTimeMaxRssKiB: median(ours.map((r) => r.maxRssKiB.gnuTimeMaxRss)),
  };

  const rows = [...COLUMNS, 'wall'].map((k) => [
    k,
    fmt(coldM[k]),
    fmt(warmM[k]),
    fmt(theirs[k], 2),
    fmt(ratios.cold[k], 2),
    fmt(ratios.warm[k], 2),
  ]);
  console.log(`\nmedian seconds per stage (TCG, ${cpus().length} cores, shared machine: noisy)`);
  console.log(`cold runs ${cold.length}, warm runs ${warm.length}, hand-written runs ${plainOk.length}\n`);
  console.log(table(['stage', 'ours cold', 'ours warm', 'theirs', 'cold/theirs', 'warm/theirs'], rows));
  console.log('wall = until the CLI process exited (total is result.json seconds, measured inside the run)');
  console.log(
    `\nboot = QEMU start to login prompt (bootSeconds); boot stage incl. overlay and QEMU start: cold ${fmt(coldM.bootStage)} s, warm ${fmt(warmM.bootStage)} s`,
  );
  if (arm64.length) {
    console.log(`\narm64 (${ARM64_FLAGS.join(' ')}) beside amd64, median seconds, warm cache, ${arm64.length} run(s)\n`);
    console.log(
      table(
        ['stage', 'amd64 warm', 'arm64', 'arm64/amd64'],
        [...COLUMNS, 'wall'].map((k) => [k, fmt(warmM[k]), fmt(arm64M[k]), fmt(ratio(arm64M[k], warmM[k]), 2)]),
      ),
    );
  }
  console.log(
    `goss's own run time (goss.json total-duration): ours ${fmt(gossOwnOurs, 3)} s, theirs ${fmt(theirs.gossOwn, 3)} s`,
  );
  console.log(
    `validate target: ours ${fmt(validateTarget.ours)} s <= ${VALIDATE_TARGET_FACTOR} x ${fmt(theirs.validate, 2)} + power-off ${fmt(theirs.powerOff, 2)} = ${fmt(validateLimit, 2)} s: ${validateTarget.met === null ? 'not measured' : validateTarget.met ? 'met' : 'NOT met'}`,
  );
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

  const failures = [
    ...allOurs
      .filter((r) => r.status !== 'passed')
      .map((r) => `${r.label}: ${r.status} (exit ${r.exitCode}) ${r.failed.join('; ')}`),
    ...plain.flatMap((p, i) => (p.error ? [`plain ${i + 1}: ${p.error}`] : [])),
  ];
  const results = {
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: { cpus: cpus().length, node: process.version, accel: 'tcg' },
    note: 'Medians of few runs on a shared 2-core machine: noisy. Seconds unless named otherwise. boot = bootSeconds (QEMU start to login prompt).',
    command: `node dist/cli/index.js run ${MAIN_JOB_FLAGS.join(' ')} --output-dir <tmp>`,
    counts: {
      cold: cold.length,
      warm: warm.length,
      plain: plainOk.length,
      arm64: arm64.length,
      watcherSamplesPerKind: watcherSamples,
    },
    ours: { cold: coldM, warm: warmM, gossOwnSeconds: gossOwnOurs, ...(arm64.length ? { arm64: arm64M } : {}) },
    theirs,
    ratio: ratios,
    validateTarget,
    watcherLatencyUs: watcher,
    watcherPreamble: preambleSource,
    peakRss: {
      ...rss,
      how: "cliVmHWM: VmHWM of the CLI's node process from /proc/<pid>/status, polled every 100 ms until it exits; gnuTimeMaxRss: /usr/bin/time -f %M around the CLI, which reports the largest RSS among the process and its waited-for descendants (QEMU, mmdebstrap)",
    },
    failures,
    runs: { cold, warm, plain, ...(arm64.length ? { arm64 } : {}) },
  };
  const target = failures.length ? join(ROOT, 'build/bench-failed.json') : output;
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, redact(JSON.stringify(results, null, 2)) + '\n');
  if (failures.length) {
    log(
      `${failures.length} run(s) failed, so ${output} is left as it was; this run's figures: ${target}\n${failures.join('\n')}`,
    );
    return 1;
  }
  log(`wrote ${target}`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(redact(e instanceof Error ? (e.stack ?? e.message) : String(e)));
    process.exitCode = 1;
  },
);
