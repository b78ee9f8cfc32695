import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { chooseBuilderBackend, probeUml } from '../src/builder/backend.js';
import { builderKey, builderPackages } from '../src/builder/image.js';
import { qemuBuilderArgv } from '../src/builder/run.js';
import type { Results, StageContext } from '../src/context.js';
import { StageError } from '../src/errors.js';
import type { StageLog } from '../src/host/exec.js';
import { stageRun } from './support/stage-run.js';
import { umlRunsHere } from './support/uml.js';

const made: { dir: string; log: StageLog }[] = [];
afterEach(async () => {
  for (const { dir, log } of made.splice(0)) {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

function context(args: string[], accel: 'kvm' | 'tcg'): StageContext {
  const scratch = mkdtempSync(join(tmpdir(), 'dvc-builder-backend-'));
  const results: Results = { accel: { accel, summary: accel === 'kvm' ? 'KVM' : 'TCG (KVM not usable: probe hung)' } };
  const { ctx } = stageRun({
    scratch,
    name: 'install',
    flags: args,
    results,
    cwd: scratch,
    hostMirror: 'http://mirror.example/debian',
    cacheDir: join(scratch, 'cache'),
  });
  made.push({ dir: scratch, log: ctx.log });
  return ctx;
}

/** chooseBuilderBackend with the run's config and the accel stage's verdict, as builder-install passes them. */
function choose(ctx: StageContext, hostCpus?: number): ReturnType<typeof chooseBuilderBackend> {
  return chooseBuilderBackend(ctx, ctx.config, ctx.results.accel, hostCpus);
}

describe('builder backend choice (like debos fakemachine)', () => {
  it('takes QEMU with KVM when the accel probe proved KVM usable', async () => {
    expect(await choose(context([], 'kvm'))).toBe('qemu-kvm');
    expect(await choose(context(['--builder-backend', 'qemu'], 'kvm'))).toBe('qemu-kvm');
  });

  it('takes QEMU/TCG without KVM on hosts with two or more cores', async () => {
    expect(await choose(context([], 'tcg'), 2)).toBe('qemu-tcg');
    expect(await choose(context(['--builder-backend', 'qemu'], 'tcg'), 1)).toBe('qemu-tcg');
  });

  const umlHere = umlRunsHere();
  it.runIf(umlHere)(
    'takes User-Mode Linux without KVM on a single core, or when asked for uml',
    async () => {
      expect(await choose(context([], 'tcg'), 1)).toBe('uml');
      expect(await choose(context(['--builder-backend', 'uml'], 'kvm'))).toBe('uml');
      expect(await choose(context(['--builder-backend', 'qemu'], 'tcg'))).toBe('qemu-tcg');
      // The choice boots the real UML kernel: 4.8 s alone, past vitest's 5 s default with VMs on the same cores.
    },
    60_000,
  );

  it.runIf(process.arch === 'x64' && !umlHere)(
    'on a host where User-Mode Linux does not run: QEMU/TCG with a warning, and a clear error for builder-backend uml',
    async () => {
      const ctx = context([], 'tcg');
      expect(await choose(ctx, 1)).toBe('qemu-tcg');
      const error = (await choose(context(['--builder-backend', 'uml'], 'kvm')).catch((e: unknown) => e)) as StageError;
      expect(error).toBeInstanceOf(StageError);
      expect(error.kind).toBe('infrastructure');
      expect(error.message).toMatch(
        /^builder-backend is uml but User-Mode Linux (does not work on this host|is not available here)/,
      );
    },
  );

  it.runIf(process.arch === 'x64' && umlHere)('the probe starts /bin/true in the real UML kernel in seconds', async () => {
    const started = performance.now();
    expect(await probeUml(context([], 'tcg'))).toEqual({ usable: true, detail: '/bin/true ran and exited 0' });
    expect(performance.now() - started).toBeLessThan(60_000);
  });

  it('the probe names what a UML kernel that cannot run a program printed (as on a CI machine whose CPU UML 6.1 fails on)', async () => {
    const ctx = context([], 'tcg');
    const broken = join(ctx.paths.root, 'linux.uml');
    // The console of the CI machine's run, first lines: the first process dies of SIGSEGV.
    writeFileSync(
      broken,
      [
        '#!/bin/sh',
        'echo "mmapper_init - find_iomem failed"',
        'echo "userspace - ptrace set fp regs failed, errno = 14"',
        'echo "Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b"',
        'exit 134',
      ].join('\n'),
      { mode: 0o755 },
    );
    const probe = await probeUml(ctx, broken);
    expect(probe.usable).toBe(false);
    expect(probe.detail).toBe(
      'a program does not run in it (userspace - ptrace set fp regs failed, errno = 14; Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b)',
    );
  });

  it('falls back to QEMU/TCG for arm64 systems without KVM, and refuses uml there', async () => {
    const arm = ['--architecture', 'arm64', '--firmware', 'uefi'];
    expect(await choose(context(arm, 'tcg'), 1)).toBe('qemu-tcg');
    const error = await choose(context([...arm, '--builder-backend', 'uml'], 'tcg')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageError);
    expect((error as StageError).message).toMatch(/builder-backend is uml but User-Mode Linux builds arm64 systems only/);
  });

  it('fails builder-backend kvm without KVM, naming why KVM is not usable', async () => {
    const error = (await choose(context(['--builder-backend', 'kvm'], 'tcg')).catch((e: unknown) => e)) as StageError;
    expect(error).toBeInstanceOf(StageError);
    expect(error.kind).toBe('infrastructure');
    expect(error.message).toBe(
      'builder-backend is kvm but KVM is not usable here (TCG (KVM not usable: probe hung)); use auto, uml or qemu',
    );
  });
});

describe('QEMU builder command line', () => {
  const image = { disk: '/c/b.img', kernel: '/c/b.vmlinuz', initrd: '/c/b.initrd' };
  const network = { restricted: true, proxySocket: '/s/apt-proxy.sock', bridge: '/s/guestfwd-bridge.mjs' };
  const files = { cow: '/s/root.qcow2', scratch: '/s/scratch.img', exportFile: '/w/job/export.img', jobDir: '/w/job', network };

  it('boots the builder image with its own kernel, job dir over 9p, console on stdout, throwaway disks', () => {
    const argv = qemuBuilderArgv('amd64', 'tcg', image, files, 2);
    const joined = argv.join(' ');
    expect(argv[0]).toBe('qemu-system-x86_64');
    expect(joined).toContain('-accel tcg,thread=multi -cpu max -smp 2 -m 2048');
    expect(joined).toContain('-kernel /c/b.vmlinuz -initrd /c/b.initrd');
    expect(joined).toContain('-drive file=/s/root.qcow2,if=virtio,format=qcow2,cache=unsafe');
    expect(joined).toContain('-drive file=/s/scratch.img,if=virtio,format=raw,cache=unsafe');
    // The export disk too: QEMU's writes reach the host file's page cache, flushes to the host disk are skipped.
    expect(joined).toContain('-drive file=/w/job/export.img,if=virtio,format=raw,cache=unsafe -netdev');
    expect(joined).toContain('-virtfs local,path=/w/job,mount_tag=dvcjob,security_model=none,id=dvcjob');
    expect(joined).toContain('-chardev stdio,id=con0,signal=off -serial chardev:con0');
    // Walled: the guest reaches the apt proxy's socket only.
    expect(argv[argv.indexOf('-netdev') + 1]).toBe(
      `user,id=net0,restrict=on,guestfwd=tcp:10.0.2.100:3142-cmd:${process.execPath} /s/guestfwd-bridge.mjs /s/apt-proxy.sock`,
    );
    expect(argv[argv.indexOf('-append') + 1]).toMatch(/^root=\/dev\/vda rw console=ttyS0,115200 net\.ifnames=0 dvc\.job=/);
    expect(argv.at(-1)).toBe('-no-reboot');
    // The builder image itself is never written: only its overlay.
    expect(joined).not.toContain('file=/c/b.img');
  });

  it('uses KVM with the host CPU, and the arm64 machine and console', () => {
    expect(qemuBuilderArgv('amd64', 'kvm', image, files, 1).join(' ')).toContain('-accel kvm -cpu host -smp 1');
    const arm = qemuBuilderArgv('arm64', 'tcg', image, files, 4);
    expect(arm[0]).toBe('qemu-system-aarch64');
    expect(arm.join(' ')).toContain('-machine virt');
    expect(arm[arm.indexOf('-append') + 1]).toContain('console=ttyAMA0,115200');
  });
});

describe('builder image key', () => {
  it('changes with the recipe inputs and carries a kernel for QEMU', () => {
    const a = builderKey('trixie', 'amd64', 'http://m/debian', '2026w48');
    expect(a).toMatch(/^trixie-amd64-2026w48-[0-9a-f]{12}$/);
    expect(builderKey('trixie', 'amd64', 'http://other/debian', '2026w48')).not.toBe(a);
    expect(builderKey('trixie', 'arm64', 'http://m/debian', '2026w48')).not.toBe(a);
    expect(builderPackages('amd64')).toEqual(expect.arrayContaining(['grml-debootstrap', 'udev', 'linux-image-amd64']));
    expect(builderPackages('arm64')).toContain('linux-image-arm64');
  });
});
