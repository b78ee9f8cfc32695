import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Results } from '../../src/context.js';
import { StageError } from '../../src/errors.js';
import { boot } from '../../src/stages/boot.js';
import { install } from '../../src/stages/install.js';
import type { BootResult, BootSpec, InstallResult } from '../../src/results.js';
import { blankDisk, breakFstab, readImageFile, withAppend } from '../support/images.js';
import { processesMentioning } from '../support/leftovers.js';
import { stageRun, type StageRun } from '../support/stage-run.js';

/*
 * The real boot stage (QEMU under TCG, the console watcher) on a good mmdebstrap image and on
 * broken copies of it. Each failure must be diagnosed seconds after its symptom reaches the serial
 * console, not at the boot timeout, and must leave no QEMU, scratch directory or resource behind.
 */

const repo = join(import.meta.dirname, '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'dvc-boot-it-'));
const figures: string[] = [];
afterAll(() => {
  console.log(`boot figures:\n${figures.join('\n')}`);
  rmSync(scratch, { recursive: true, force: true });
});

type Run = StageRun;

function setUp(name: string, flags: string[], results: Results = {}): Run {
  const base = ['--working-directory', join(repo, 'examples', 'hello'), '--installer', 'mmdebstrap', '--release', 'trixie'];
  return stageRun({ scratch, name, flags: [...base, '--vm-cpus', '2', ...flags], results, cwd: repo, password: 'dvc-boot-test' });
}

/** Nothing of the run is left: no QEMU, no scratch dir, nothing in the resource file. */
function nothingLeft(run: Run): void {
  expect(processesMentioning(run.outputDir)).toEqual([]);
  for (const r of run.resources.everAdded) {
    if (r.kind === 'dir') {
      expect(existsSync(r.path), `${r.path} left behind`).toBe(false);
      expect(processesMentioning(r.path)).toEqual([]);
    }
  }
  expect(run.resources.everAdded.some((r) => r.kind === 'dir' && /\/dvc-vm-/.test(r.path))).toBe(true);
  expect(run.resources.list()).toEqual([]);
  expect(JSON.parse(readFileSync(run.resources.path, 'utf8'))).toEqual([]);
}

/** Watches serial.log for the symptom, so that the time from symptom to verdict can be measured. */
function watchSerial(run: Run, symptom: RegExp): { seenAt: () => number | undefined; stop: () => void } {
  let seenAt: number | undefined;
  const timer = setInterval(() => {
    if (seenAt !== undefined) return;
    try {
      if (symptom.test(readFileSync(run.ctx.paths.serialLog, 'latin1'))) seenAt = performance.now();
    } catch {
      /* not written yet */
    }
  }, 50);
  return { seenAt: () => seenAt, stop: () => clearInterval(timer) };
}

interface FailedBoot {
  error: StageError;
  /** Seconds from the symptom appearing in serial.log to the stage's verdict. */
  symptomToVerdict: number;
  total: number;
}

async function bootFails(run: Run, symptom: RegExp): Promise<FailedBoot> {
  const watch = watchSerial(run, symptom);
  const t0 = performance.now();
  let error: unknown;
  try {
    const r = await boot.run(run.ctx);
    await r.vm.shutdown('unexpected login');
  } catch (e) {
    error = e;
  } finally {
    watch.stop();
    await run.ctx.log.close();
  }
  const verdictAt = performance.now();
  if (!(error instanceof StageError)) throw new Error(`expected a StageError, got ${String(error)}`);
  // A verdict within one poll of the symptom (the stage's screenshot and shutdown can be that quick too).
  const seenAt = watch.seenAt() ?? (symptom.test(readFileSync(run.ctx.paths.serialLog, 'latin1')) ? verdictAt : undefined);
  if (seenAt === undefined) throw new Error(`no ${symptom} in serial.log; the stage said: ${error.message}`);
  const symptomToVerdict = Math.round((verdictAt - seenAt) / 100) / 10;
  const total = Math.round((verdictAt - t0) / 100) / 10;
  figures.push(`${run.name}: verdict ${total}s after start, ${symptomToVerdict}s after the symptom; ${error.message}`);
  return { error, symptomToVerdict, total };
}

let good: InstallResult;
let direct: Extract<BootSpec, { kind: 'direct' }>;

function results(image: string, bootSpec: BootSpec): Results {
  return {
    accel: { accel: 'tcg', summary: 'tcg (test)' },
    install: { ...good, image, boot: bootSpec },
  };
}

beforeAll(async () => {
  // The good image comes from the real installer, as in CI where no image exists beforehand.
  const run = setUp('install', []);
  const t0 = performance.now();
  try {
    good = await install.run(run.ctx);
  } finally {
    await run.ctx.log.close();
  }
  figures.push(`install (mmdebstrap trixie): ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  if (good.boot.kind !== 'direct') throw new Error('mmdebstrap images boot directly');
  direct = good.boot;
  expect(readImageFile(good.image, '/etc/fstab')).toContain('/dev/vda / ext4');
  expect(run.resources.list()).toEqual([]);
});

describe('boot stage on real images (TCG)', () => {
  it('a good image: login prompt, boot time and milestones recorded, the VM left running for validate', async () => {
    const run = setUp('good', [], results(good.image, direct));
    let result: BootResult | undefined;
    try {
      result = await boot.run(run.ctx);
      expect(result.vm.running).toBe(true);
      expect(result.bootSeconds).toBeGreaterThan(1);
      expect(result.bootSeconds).toBeLessThan(600);
      expect(result.summary).toBe(`login prompt after ${result.bootSeconds}s (tcg)`);
      expect(result.milestones.map((m) => m.milestone)).toEqual(expect.arrayContaining(['kernel', 'initramfs', 'init', 'login']));
      expect(result.milestones.at(-1)?.milestone).toBe('login');
      // QEMU writes serial.log right after the socket: the prompt may reach us a moment before the file.
      await expect.poll(() => readFileSync(run.ctx.paths.serialLog, 'utf8'), { timeout: 5000 }).toMatch(/ login:/);
      figures.push(
        `good: login after ${result.bootSeconds}s (${result.milestones.map((m) => `${m.milestone} ${m.seconds}s`).join(', ')})`,
      );
    } finally {
      await result?.vm.shutdown('test end');
      await run.ctx.log.close();
    }
    nothingLeft(run);
  });

  it('kernel panic (init exits): diagnosed at the panic line', async () => {
    const append = withAppend(direct.append, { extra: ['init=/bin/false'] });
    const run = setUp('panic', ['--boot-timeout', '300s'], results(good.image, { ...direct, append }));
    const { error, symptomToVerdict } = await bootFails(run, /Kernel panic - not syncing/);
    expect(error.kind).toBe('test');
    expect(error.message).toMatch(
      /^boot failed after [\d.]+s: the kernel panicked\. Console: ".*Kernel panic - not syncing: Attempted to kill init!/,
    );
    expect(symptomToVerdict).toBeLessThan(30);
    expect(error.details.join('\n')).toContain('Kernel panic - not syncing');
    nothingLeft(run);
  });

  it('a broken /etc/fstab entry: the emergency shell, seconds after systemd gives up', async () => {
    const image = breakFstab(good.image, join(scratch, 'images', 'fstab.img'));
    const run = setUp('fstab', ['--boot-timeout', '300s'], results(image, direct));
    const { error, symptomToVerdict } = await bootFails(run, /emergency\.service|You are in emergency mode/);
    expect(error.kind).toBe('test');
    expect(error.message).toMatch(/^boot failed after [\d.]+s: systemd entered emergency or rescue mode/);
    expect(symptomToVerdict).toBeLessThan(30);
    // The failed mount is in the console lines the error carries, in whichever of systemd's wordings made it into
    // the last 30 lines (under load the status lines and the kernel-log lines interleave differently).
    expect(error.details.join('\n')).toMatch(
      /Dependency failed for mnt-x\.mount|Timed out waiting for device|mnt-x\.mount\/start failed with result 'dependency'/,
    );
    expect(existsSync(join(run.ctx.paths.diagnostics, 'screen.png'))).toBe(true);
    nothingLeft(run);
  });

  it('a wrong root= with ttyS0 last: the initramfs shell', async () => {
    const append = withAppend(direct.append, { root: '/dev/vdz', extra: ['rootdelay=5'] });
    // ttyS0 is the last console=, so /dev/console: the initramfs shell prints on the serial console.
    expect(
      append
        .split(' ')
        .filter((w) => w.startsWith('console='))
        .at(-1),
    ).toBe('console=ttyS0,115200');
    const run = setUp('wrong-root', ['--boot-timeout', '300s'], results(good.image, { ...direct, append }));
    const { error, symptomToVerdict } = await bootFails(run, /Gave up waiting for root/);
    expect(error.kind).toBe('test');
    expect(error.message).toMatch(
      /^boot failed after [\d.]+s: the initramfs could not find or mount the root file system .*Console: "Gave up waiting for root file system device\. {2}Common problems:"/,
    );
    expect(symptomToVerdict).toBeLessThan(30);
    nothingLeft(run);
  });

  it('a blank disk under SeaBIOS: no bootable device, within seconds', async () => {
    const disk = blankDisk(join(scratch, 'images', 'blank.img'));
    // 120 s instead of TCG's default 600 s: without the diagnosis this test fails at the timeout.
    const run = setUp('blank-bios', ['--firmware', 'bios', '--boot-timeout', '120s'], results(disk, { kind: 'disk' }));
    const { error, total } = await bootFails(run, /No bootable device|Boot failed/);
    expect(error.kind).toBe('test');
    expect(error.message).toMatch(
      /^boot failed after [\d.]+s: the firmware found nothing to boot on the disk.*Console: "Boot failed: not a bootable disk"/,
    );
    expect(total).toBeLessThan(60);
    nothingLeft(run);
  });

  it('a guest that hangs silently: the boot-timeout diagnosis with a screenshot', async () => {
    // PID 1 is sleep: nothing more is ever printed, nothing panics.
    const append = withAppend(direct.append, { extra: ['init=/usr/bin/sleep', '--', '1000'] });
    const run = setUp('hang', ['--boot-timeout', '20s'], results(good.image, { ...direct, append }));
    const t0 = performance.now();
    let error: unknown;
    try {
      const r = await boot.run(run.ctx);
      await r.vm.shutdown('unexpected login');
    } catch (e) {
      error = e;
    } finally {
      await run.ctx.log.close();
    }
    const seconds = (performance.now() - t0) / 1000;
    figures.push(`hang: timeout diagnosis after ${seconds.toFixed(1)}s (boot-timeout 20s)`);
    expect(error).toBeInstanceOf(StageError);
    const e = error as StageError;
    expect(e.kind).toBe('test');
    expect(e.message).toMatch(
      /^no login prompt within 20s \(boot-timeout\); last milestone: \w+ \(seen: .*kernel.*\)\. A screenshot of the VGA console is in diagnostics\/screen\.png\.$/,
    );
    expect(seconds).toBeGreaterThanOrEqual(20);
    expect(seconds).toBeLessThan(50);
    const png = readFileSync(join(run.ctx.paths.diagnostics, 'screen.png'));
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(readFileSync(run.ctx.paths.serialLog, 'utf8')).toContain('Linux version');
    nothingLeft(run);
  });
});
