import { describe, expect, it } from 'vitest';
import {
  findUefiFirmware,
  qemuArgv,
  qemuBinary,
  qemuPackage,
  UEFI_FIRMWARE_CANDIDATES,
  type QemuVmSpec,
} from '../src/vm/qemu.js';
import { userNetdev } from '../src/vm/guest-network.js';

const base: QemuVmSpec = {
  arch: 'amd64',
  accel: 'tcg',
  cpus: 2,
  memoryMiB: 1024,
  firmware: 'bios',
  disk: '/tmp/dvc-vm-x/overlay.qcow2',
  diskFormat: 'qcow2',
  serialSocket: '/tmp/dvc-vm-x/serial.sock',
  serialLog: '/out/serial.log',
  monitorSocket: '/tmp/dvc-vm-x/monitor.sock',
  pidFile: '/tmp/dvc-vm-x/qemu.pid',
  network: { restricted: true, proxySocket: '/tmp/dvc-vm-x/apt-proxy.sock', bridge: '/tmp/dvc-vm-x/guestfwd-bridge.mjs' },
};

/** The value after each occurrence of `flag`. */
function values(argv: readonly string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));
}

function value(argv: readonly string[], flag: string): string | undefined {
  const all = values(argv, flag);
  expect(all.length, `${flag} given ${all.length} times`).toBeLessThanOrEqual(1);
  return all[0];
}

describe('qemuArgv', () => {
  it.each([
    { name: 'tcg', accel: 'tcg' as const, wantAccel: 'tcg,thread=multi', wantCpu: 'max' },
    { name: 'kvm', accel: 'kvm' as const, wantAccel: 'kvm', wantCpu: 'host' },
  ])('$name: accelerator and CPU model', ({ accel, wantAccel, wantCpu }) => {
    const argv = qemuArgv({ ...base, accel });
    expect(value(argv, '-accel')).toBe(wantAccel);
    expect(value(argv, '-cpu')).toBe(wantCpu);
    expect(value(argv, '-smp')).toBe('2');
    expect(value(argv, '-m')).toBe('1024');
  });

  it.each([
    {
      name: 'amd64',
      arch: 'amd64' as const,
      binary: 'qemu-system-x86_64',
      pkg: 'qemu-system-x86',
      // graphics=off: SeaBIOS mirrors its screen to the serial console, or it writes nothing there.
      machine: 'q35,graphics=off',
      vga: 'std',
      ramfb: false,
    },
    {
      name: 'arm64',
      arch: 'arm64' as const,
      binary: 'qemu-system-aarch64',
      pkg: 'qemu-system-arm',
      machine: 'virt',
      vga: 'none',
      ramfb: true,
    },
  ])('$name: binary, machine (no floppy controller on x86) and a screen for screenshots', (c) => {
    const argv = qemuArgv({ ...base, arch: c.arch, firmware: c.arch === 'arm64' ? 'uefi' : 'bios' });
    expect(argv[0]).toBe(c.binary);
    expect(qemuBinary(c.arch)).toBe(c.binary);
    expect(qemuPackage(c.arch)).toBe(c.pkg);
    expect(value(argv, '-machine')).toBe(c.machine);
    expect(value(argv, '-display')).toBe('none');
    expect(value(argv, '-vga')).toBe(c.vga);
    expect(values(argv, '-device').includes('ramfb')).toBe(c.ramfb);
    expect(argv).toContain('-nodefaults');
    expect(argv).toContain('-no-reboot');
  });

  it.each([
    { name: 'bios', firmware: 'bios' as const, uefiVars: undefined, pflash: [] },
    {
      name: 'uefi with a per-VM variable store',
      firmware: 'uefi' as const,
      uefiVars: '/tmp/dvc-vm-x/efivars.fd',
      pflash: [
        'if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
        'if=pflash,format=raw,unit=1,file=/tmp/dvc-vm-x/efivars.fd',
      ],
    },
    {
      name: 'uefi without a variable store',
      firmware: 'uefi' as const,
      uefiVars: undefined,
      pflash: ['if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd'],
    },
  ])('firmware $name', ({ firmware, uefiVars, pflash }) => {
    const argv = qemuArgv({ ...base, firmware, uefiVars });
    expect(values(argv, '-drive').filter((d) => d.startsWith('if=pflash'))).toEqual(pflash);
    // The read-only code image never doubles as the writable store.
    for (const arch of ['amd64', 'arm64'] as const) {
      for (const f of UEFI_FIRMWARE_CANDIDATES[arch]) expect(f.code).not.toBe(f.vars);
    }
  });

  it.each([
    {
      arch: 'amd64' as const,
      present: ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'],
      code: '/usr/share/OVMF/OVMF_CODE_4M.fd',
    },
    {
      arch: 'amd64' as const,
      present: ['/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/OVMF/OVMF_VARS.fd'],
      code: '/usr/share/OVMF/OVMF_CODE.fd',
    },
    // A code image without its variable store is of no use: the next pair is taken.
    {
      arch: 'amd64' as const,
      present: ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/edk2/ovmf/OVMF_CODE.fd', '/usr/share/edk2/ovmf/OVMF_VARS.fd'],
      code: '/usr/share/edk2/ovmf/OVMF_CODE.fd',
    },
    {
      arch: 'arm64' as const,
      present: ['/usr/share/AAVMF/AAVMF_CODE.fd', '/usr/share/AAVMF/AAVMF_VARS.fd'],
      code: '/usr/share/AAVMF/AAVMF_CODE.fd',
    },
    { arch: 'arm64' as const, present: [] as string[], code: undefined },
  ])('finds $arch firmware among the known paths: $code', ({ arch, present, code }) => {
    expect(findUefiFirmware(arch, (p) => present.includes(p))?.code).toBe(code);
  });

  it.each([
    { name: 'disk boot', direct: undefined },
    {
      name: 'direct kernel boot',
      direct: { kernel: '/img/vmlinuz', initrd: '/img/initrd.img', append: 'root=/dev/vda console=ttyS0' },
    },
  ])('$name', ({ direct }) => {
    const argv = qemuArgv({ ...base, direct });
    expect(value(argv, '-kernel')).toBe(direct?.kernel);
    expect(value(argv, '-initrd')).toBe(direct?.initrd);
    // One argv element, however many words: never split or quoted for a shell.
    expect(value(argv, '-append')).toBe(direct?.append);
    expect(values(argv, '-drive').filter((d) => !d.startsWith('if=pflash'))).toEqual([
      'file=/tmp/dvc-vm-x/overlay.qcow2,if=virtio,format=qcow2,cache=unsafe,discard=unmap',
    ]);
  });

  it.each([
    { name: 'no share', share: undefined, virtfs: [] },
    {
      name: 'a 9p share',
      share: { path: '/tmp/dvc-vm-x/share', tag: 'dvc' },
      virtfs: ['local,path=/tmp/dvc-vm-x/share,mount_tag=dvc,security_model=none,id=dvc'],
    },
  ])('$name', ({ share, virtfs }) => {
    expect(values(qemuArgv({ ...base, share }), '-virtfs')).toEqual(virtfs);
  });

  it('the serial console is a socket we read, mirrored to the log file: never an unread pty or stdio', () => {
    const argv = qemuArgv(base);
    expect(values(argv, '-chardev')).toEqual([
      'socket,id=serial0,path=/tmp/dvc-vm-x/serial.sock,server=on,wait=on,logfile=/out/serial.log,logappend=on',
    ]);
    expect(values(argv, '-serial')).toEqual(['chardev:serial0']);
    expect(value(argv, '-monitor')).toBe('unix:/tmp/dvc-vm-x/monitor.sock,server=on,wait=off');
    expect(value(argv, '-pidfile')).toBe('/tmp/dvc-vm-x/qemu.pid');
    expect(argv.join(' ')).not.toMatch(/\bpty\b|\bstdio\b|-nographic/);
    // Networking without a PXE ROM: the firmware goes straight to the disk.
    expect(values(argv, '-device')).toContain('virtio-net-pci,netdev=net0,romfile=');
  });

  it('the network is walled to the apt proxy: restrict=on, one guestfwd to the proxy socket through the bridge', () => {
    expect(value(qemuArgv(base), '-netdev')).toBe(
      `user,id=net0,restrict=on,guestfwd=tcp:10.0.2.100:3142-cmd:${process.execPath} /tmp/dvc-vm-x/guestfwd-bridge.mjs /tmp/dvc-vm-x/apt-proxy.sock`,
    );
  });

  it('vm-network open: the user-mode network without restrict, the proxy forwarded all the same', () => {
    const argv = qemuArgv({ ...base, network: { ...base.network, restricted: false } });
    expect(value(argv, '-netdev')).toMatch(/^user,id=net0,guestfwd=tcp:10\.0\.2\.100:3142-cmd:/);
  });
});

describe('userNetdev', () => {
  it("quotes each word of the bridge command for libslirp's argv split and doubles commas for QEMU's parser", () => {
    const net = { restricted: true, proxySocket: '/t/a,b c/apt-proxy.sock', bridge: "/t/it's/guestfwd-bridge.mjs" };
    expect(userNetdev('n', net, '/usr/bin/node')).toBe(
      `user,id=n,restrict=on,guestfwd=tcp:10.0.2.100:3142-cmd:/usr/bin/node '/t/it'\\''s/guestfwd-bridge.mjs' '/t/a,,b c/apt-proxy.sock'`,
    );
  });
});
