import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { describe, expect, it } from 'vitest';
import {
  cleanConsoleLine,
  ConsoleWatcher,
  MAX_LINE,
  type BootFailure,
  type ConsoleEvent,
  type Milestone,
} from '../src/vm/console.js';

/*
 * The fixtures are real serial logs of QEMU guests (see fixtures/console/README.md for how each
 * was made). They are fed the way GuestVm feeds the watcher: bytes from the socket, decoded as
 * UTF-8 by a streaming decoder, in chunks whose boundaries fall anywhere.
 */

const dir = join(import.meta.dirname, 'fixtures', 'console');

interface Fed {
  watcher: ConsoleWatcher;
  events: ConsoleEvent[];
  /** Characters pushed when the verdict was first returned (-1: never). */
  verdictAt: number;
  text: string;
}

function feed(bytes: Buffer, chunk: number, keepLines?: number): Fed {
  const watcher = new ConsoleWatcher(keepLines);
  const decoder = new StringDecoder('utf8');
  const events: ConsoleEvent[] = [];
  let text = '';
  let verdictAt = -1;
  for (let i = 0; i < bytes.length; i += chunk) {
    const s = decoder.write(bytes.subarray(i, i + chunk));
    text += s;
    const got = watcher.push(s);
    events.push(...got);
    if (verdictAt < 0 && got.some((e) => e.type !== 'milestone')) verdictAt = text.length;
  }
  return { watcher, events, verdictAt, text };
}

interface FixtureCase {
  file: string;
  verdict: 'login' | BootFailure | undefined;
  /** The verdict's line, escape sequences removed. */
  line?: string;
  /**
   * The text (escapes included) whose last character is the earliest point the verdict may come:
   * the end of a prompt, or the line terminator after a symptom line.
   */
  symptom?: string;
  milestones: Milestone[];
  /** The last console lines the watcher keeps. */
  tail: string[];
}

const FIXTURES: FixtureCase[] = [
  {
    file: 'good-trixie.log',
    verdict: 'login',
    line: 'debian login:',
    // The kernel wrote on the prompt's line before any newline: "debian login: [   27.314760] powernow_k8: ...".
    symptom: 'debian login:',
    milestones: ['kernel', 'initramfs', 'init', 'login'],
    tail: [
      'Debian GNU/Linux 13 debian ttyS0',
      'debian login: [   27.314760] powernow_k8: Power state transitions not supported',
      '[   27.339606] powernow_k8: Power state transitions not supported',
    ],
  },
  {
    file: 'good-trixie-seabios-serial.log',
    verdict: 'login',
    line: 'debian login:',
    symptom: 'debian login:',
    milestones: ['firmware', 'kernel', 'initramfs', 'init', 'login'],
    tail: [
      '[   42.261358] powernow_k8: Power state transitions not supported',
      'Debian GNU/Linux 13 debian ttyS0',
      'debian login:',
    ],
  },
  {
    file: 'good-trixie-arm64.log',
    verdict: 'login',
    line: 'debian login:',
    symptom: 'debian login:',
    // AAVMF's banner, the EFI stub, the arm64 kernel, systemd and the serial getty on ttyAMA0.
    milestones: ['firmware', 'kernel', 'initramfs', 'init', 'login'],
    tail: ['Debian GNU/Linux 13 debian ttyAMA0', 'debian login:'],
  },
  {
    file: 'arm64-kernel-panic-no-root.log',
    verdict: 'kernel-panic',
    // AAVMF and the EFI stub, then the arm64 kernel without an initrd: virtio_blk is a module, so no /dev/vda.
    line: '[    6.231355] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)',
    symptom: 'Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r\n',
    milestones: ['firmware', 'kernel'],
    tail: [
      '[    6.232573] CPU: 0 UID: 0 PID: 1 Comm: swapper/0 Not tainted 6.12.117+deb13-arm64 #1  Debian 6.12.117-1',
      '[    6.233537] Hardware name: QEMU QEMU Virtual Machine, BIOS 0.0.0 02/06/2015',
      '[    6.238316] Call trace:',
    ],
  },
  {
    file: 'kernel-panic-init.log',
    verdict: 'kernel-panic',
    line: '[    7.899785] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100',
    symptom: 'Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\r\n',
    milestones: ['kernel', 'initramfs'],
    tail: [
      '[    7.900342] CPU: 1 UID: 0 PID: 1 Comm: false Not tainted 6.12.117+deb13-amd64 #1  Debian 6.12.117-1',
      '[    7.900542] Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.2-debian-1.16.2-1 04/01/2014',
      '[    7.900775] Call Trace:',
    ],
  },
  {
    file: 'kernel-panic-no-root.log',
    verdict: 'kernel-panic',
    line: '[    1.594451] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)',
    symptom: 'Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r\n',
    milestones: ['kernel'],
    tail: [
      '[    1.594793] CPU: 0 UID: 0 PID: 1 Comm: swapper/0 Not tainted 6.12.117+deb13-amd64 #1  Debian 6.12.117-1',
      '[    1.595011] Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.2-debian-1.16.2-1 04/01/2014',
      '[    1.595230] Call Trace:',
    ],
  },
  {
    file: 'initramfs-shell.log',
    verdict: 'initramfs-shell',
    // The whole line, however the bytes were chunked: not the first half of it.
    line: 'Gave up waiting for root file system device.  Common problems:',
    symptom: 'Gave up waiting for root file system device.  Common problems:\r\n',
    milestones: ['kernel', 'initramfs'],
    tail: [
      ' - Missing modules (cat /proc/modules; ls /dev)',
      'ALERT!  /dev/vdz does not exist.  Dropping to a shell!',
      '(initramfs)',
    ],
  },
  {
    file: 'arm64-serial-getty-timeout.log',
    verdict: 'serial-getty-failed',
    // An arm64 guest (AAVMF, EFI stub, ttyAMA0) under TCG on a busy amd64 host: udev's coldplug outlasted systemd's
    // 90 s wait for /dev/ttyAMA0, so the serial getty never starts and no login prompt would come.
    line: '[DEPEND] Dependency failed for serial-getty….service - Serial Getty on ttyAMA0.',
    symptom: 'Serial Getty on ttyAMA0.\r\r',
    milestones: ['firmware', 'kernel', 'initramfs', 'init'],
    tail: ['[**    ] (1 of 2) Job systemd-update-done.se…tart running (1min 34s / no limit)'],
  },
  {
    file: 'emergency-fstab.log',
    verdict: 'emergency-shell',
    // systemd's status line, five seconds (guest time) before "You are in emergency mode".
    line: '[  OK  ] Started emergency.service - Emergency Shell.',
    // systemd ends its status lines with CR CR LF: the first CR ends the line once the next byte shows it is no CRLF.
    symptom: 'Emergency Shell.\r\r',
    milestones: ['kernel', 'initramfs', 'init'],
    tail: [
      '(or press Control-D to continue): [   21.993177] AES CTR mode by8 optimization enabled',
      '[   23.876639] kvm_amd: Nested Virtualization enabled',
      '[   23.877266] kvm_amd: Nested Paging enabled',
    ],
  },
  {
    file: 'seabios-no-bootable-device.log',
    verdict: 'no-bootable-device',
    line: 'Boot failed: not a bootable disk',
    symptom: 'Boot failed: not a bootable disk\r\n',
    milestones: ['firmware'],
    tail: ['Booting from Floppy...', 'Boot failed: could not read the boot disk', 'No bootable device.'],
  },
  {
    file: 'ovmf-no-boot-option.log',
    verdict: 'uefi-no-boot-option',
    line: 'BdsDxe: failed to load Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x4,0x0): Not Found',
    symptom: ': Not Found\r\n',
    milestones: [],
    tail: [
      '  PXE-E16: No valid offer received.',
      'BdsDxe: failed to load Boot0002 "UEFI PXEv4 (MAC:525400123456)" from PciRoot(0x0)/Pci(0x2,0x0)/MAC(525400123456,0x1)/IPv4(0.0.0.0,0x0,DHCP,0.0.0.0,0.0.0.0,0.0.0.0): Not Found',
      '>>Start PXE over IPv6.',
    ],
  },
  {
    file: 'ovmf-uefi-shell.log',
    verdict: 'uefi-no-boot-option',
    line: 'BdsDxe: failed to load Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x3,0x0): Not Found',
    symptom: ': Not Found\r\n',
    milestones: [],
    tail: [
      '     BLK0: Alias(s):',
      '          PciRoot(0x0)/Pci(0x3,0x0)',
      expect.stringMatching(/^Press ESC in 5 seconds/),
      'Shell>',
    ] as string[],
  },
  {
    // console=tty0 last: the initramfs shell went to the VGA screen only. Nothing on the serial
    // console says so; the boot stage's timeout and screenshot are what is left.
    file: 'tty0-last.log',
    verdict: undefined,
    milestones: ['kernel', 'initramfs'],
    tail: [
      '[    6.525485] ata5: SATA link down (SStatus 0 SControl 300)',
      '[    6.525902] ata6: SATA link down (SStatus 0 SControl 300)',
      '[    6.526201] ata3: SATA link down (SStatus 0 SControl 300)',
    ],
  },
];

describe.each(FIXTURES)('real console: $file', (c) => {
  const bytes = readFileSync(join(dir, c.file));

  it.each([1, 7, 4096, bytes.length])('in chunks of %i bytes', (chunk) => {
    const { watcher, events, verdictAt, text } = feed(bytes, chunk);
    const verdict = watcher.result;
    if (c.verdict === undefined) {
      expect(verdict).toBeUndefined();
      expect(verdictAt).toBe(-1);
    } else {
      expect(verdict?.type === 'failure' ? verdict.failure : verdict?.type).toBe(c.verdict);
      expect(verdict?.line).toBe(c.line);
      // Exactly one verdict, and it is the last event: the watcher stops judging.
      expect(events.filter((e) => e.type !== 'milestone')).toEqual([verdict]);
      expect(events.at(-1)).toBe(verdict);
      // Not before the symptom was complete, and (byte by byte) right when it was.
      const symptomEnd = text.indexOf(c.symptom!) + c.symptom!.length;
      expect(text.indexOf(c.symptom!)).toBeGreaterThanOrEqual(0);
      expect(verdictAt).toBeGreaterThanOrEqual(symptomEnd);
      if (chunk === 1) expect(verdictAt).toBe(symptomEnd);
      expect(verdictAt - symptomEnd).toBeLessThan(Math.max(chunk, 1));
      // The offset is where the verdict's line starts, whatever the chunking.
      const lineStart = text.lastIndexOf('\n', text.indexOf(c.symptom!)) + 1;
      expect(verdict?.offset).toBe(lineStart);
    }
    expect(watcher.milestones).toEqual(c.milestones);
    expect(events.filter((e) => e.type === 'milestone').map((e) => e.type === 'milestone' && e.milestone)).toEqual(
      c.milestones.filter((m) => m !== 'login'),
    );
    expect(watcher.tail(c.tail.length)).toEqual(c.tail);
  });

  it('causes() keeps the lines that name a failure, from the whole console, even with a 5-line tail', () => {
    const { watcher } = feed(bytes, 512, 5);
    const causes = watcher.causes();
    expect(causes.length).toBeLessThanOrEqual(10);
    expect(causes.every((l) => /FAILED|Dependency failed|Timed out|Failed to|failed with result|failed/.test(l))).toBe(true);
    if (c.file === 'emergency-fstab.log') {
      expect(causes).toEqual(
        expect.arrayContaining([expect.stringMatching(/^\[DEPEND\] Dependency failed for mnt-x\.mount - \/mnt\/x\.$/)]),
      );
      expect(causes).toEqual(expect.arrayContaining([expect.stringMatching(/^\[ TIME \] Timed out waiting for device dev-d/)]));
    }
    if (c.verdict === 'login' && c.file.startsWith('good-')) expect(causes).toEqual([]);
  });

  it('tail() keeps only keepLines lines, and no escape sequences', () => {
    const { watcher } = feed(bytes, 512, 5);
    expect(watcher.tail(100).length).toBeLessThanOrEqual(6);
    const text = watcher.tail(100).join('\n');
    expect(text).not.toContain('\x1b');
    expect(text).not.toMatch(/\[[0-9;:=?]*[mhH]/);
  });
});

describe('synthetic console edge cases', () => {
  const cases: {
    name: string;
    input: string[];
    verdict: 'login' | BootFailure | undefined;
    line?: string;
    milestones?: Milestone[];
  }[] = [
    {
      name: 'ANSI colours around the emergency banner',
      input: ['\x1b[0;1;31mYou are in \x1b[0memergency mode. After logging in, type "journalctl -xb"\r\n'],
      verdict: 'emergency-shell',
      line: 'You are in emergency mode. After logging in, type "journalctl -xb"',
    },
    {
      name: 'SGR with colon sub-parameters (systemd 257 DEPEND status)',
      input: [
        '[\x1b[0;1;38:5:185mDEPEND\x1b[0m] Dependency failed for local-fs.target.\r\n',
        'Kernel panic - not syncing: x\r\n',
      ],
      verdict: 'kernel-panic',
      line: 'Kernel panic - not syncing: x',
    },
    {
      name: 'CR-only line ends',
      input: ['SeaBIOS (version 1.16)\rLinux version 6.1.0\rKernel panic - not syncing: VFS\rmore\r'],
      verdict: 'kernel-panic',
      line: 'Kernel panic - not syncing: VFS',
      milestones: ['firmware', 'kernel'],
    },
    {
      name: 'a login prompt without a newline',
      input: ['\r\nDebian GNU/Linux 12 ci ttyS0\r\n\r\n', 'ci login: '],
      verdict: 'login',
      line: 'ci login:',
      milestones: ['login'],
    },
    {
      name: 'a login prompt the kernel wrote over before the newline',
      input: ['host login: [   27.3] powernow_k8: Power state transitions not supported\r\n'],
      verdict: 'login',
      line: 'host login:',
      milestones: ['login'],
    },
    {
      name: 'pam_unix(login:session) is no prompt',
      input: ['pam_unix(login:session): session opened for user root\r\n'],
      verdict: undefined,
    },
    {
      name: 'the grub rescue prompt',
      input: ["error: file `/boot/grub/i386-pc/normal.mod' not found.\r\n", 'grub rescue> '],
      verdict: 'grub-rescue',
      line: 'grub rescue>',
    },
    {
      name: 'GRUB entering rescue mode',
      input: ['error: unknown filesystem.\r\nEntering rescue mode...\r\n'],
      verdict: 'grub-rescue',
      line: 'Entering rescue mode...',
    },
    {
      name: 'the grub> prompt',
      input: ['                             Minimal BASH-like line editing is supported.\r\n', 'grub> '],
      verdict: 'grub-error',
      line: 'grub>',
    },
    {
      name: 'GRUB without a kernel',
      input: ['error: you need to load the kernel first.\r\n'],
      verdict: 'grub-error',
      line: 'error: you need to load the kernel first.',
    },
    {
      name: 'harmless GRUB errors on a boot that goes on',
      input: [
        '\x1b[0m\x1b[30m\x1b[47mWelcome to GRUB!\r\n\r\n',
        'error: no such device: 1d5b5f8e-0f3a-4f4b-8d2a-1b8e5e8f0c11.\r\n',
        "error: file `/boot/grub/locale/en.mo.gz' not found.\r\n",
        'error: ../../grub-core/net/net.c:1552:no server is specified.\r\n',
        "  Booting `Debian GNU/Linux'\r\n\r\nLoading Linux 6.1.0-28-amd64 ...\r\nLoading initial ramdisk ...\r\n",
        '[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)\r\n',
      ],
      verdict: undefined,
      milestones: ['bootloader', 'kernel'],
    },
    {
      name: 'BusyBox banner of the initramfs shell',
      input: [
        '\r\n\r\nBusyBox v1.36.1 (Debian 1:1.36.1-9) built-in shell (ash)\r\n',
        "Enter 'help' for a list of built-in commands.\r\n\r\n",
      ],
      verdict: 'initramfs-shell',
      line: 'BusyBox v1.36.1 (Debian 1:1.36.1-9) built-in shell (ash)',
    },
    { name: 'the (initramfs) prompt alone', input: ['(initramfs) '], verdict: 'initramfs-shell', line: '(initramfs)' },
    {
      name: 'half a symptom line is not a verdict yet',
      input: ['Gave up waiting for root'],
      verdict: undefined,
    },
    {
      name: 'root account locked',
      input: ['Cannot open access to console, the root account is locked.\r\nSee sulogin(8) man page for more details.\r\n'],
      verdict: 'maintenance-prompt',
      line: 'Cannot open access to console, the root account is locked.',
    },
    {
      name: "bookworm's sulogin",
      input: ['Give root password for maintenance\r\n', '(or press Control-D to continue): '],
      verdict: 'maintenance-prompt',
      line: 'Give root password for maintenance',
    },
    {
      name: "trixie's sulogin",
      input: ['Enter root password for system maintenance\r\n', '(or press Control-D to continue): '],
      verdict: 'maintenance-prompt',
      line: 'Enter root password for system maintenance',
    },
    {
      name: 'the sulogin prompt alone',
      input: ['(or press Control-D to continue): '],
      verdict: 'maintenance-prompt',
      line: '(or press Control-D to continue):',
    },
    {
      name: 'SeaBIOS with nothing to boot',
      input: [
        'SeaBIOS (version 1.16.2)\r\nBooting from Hard Disk...\r\nBoot failed: not a bootable disk\r\n\r\nNo bootable device.\r\n',
      ],
      verdict: 'no-bootable-device',
      line: 'Boot failed: not a bootable disk',
      milestones: ['firmware'],
    },
    {
      name: 'OVMF with no boot option at all',
      input: ['BdsDxe: No bootable option or device was found.\r\nBdsDxe: Press any key to enter the Boot Manager Menu.\r\n'],
      verdict: 'uefi-no-boot-option',
      line: 'BdsDxe: No bootable option or device was found.',
    },
    {
      name: 'the verdict is final: a login prompt after a panic changes nothing',
      input: ['Kernel panic - not syncing: Attempted to kill init!\r\n', 'debian login: '],
      verdict: 'kernel-panic',
      line: 'Kernel panic - not syncing: Attempted to kill init!',
    },
  ];

  it.each(cases)('$name', (c) => {
    for (const chunk of [1, 3, 1 << 20]) {
      const { watcher } = feed(Buffer.from(c.input.join('')), chunk);
      const r = watcher.result;
      expect(r?.type === 'failure' ? r.failure : r?.type, `chunks of ${chunk}`).toBe(c.verdict);
      expect(r?.line, `chunks of ${chunk}`).toBe(c.line);
      if (c.milestones) expect(watcher.milestones).toEqual(c.milestones);
    }
    // Chunk boundaries exactly as given, too (prompts arrive on their own).
    const w = new ConsoleWatcher();
    for (const s of c.input) w.push(s);
    expect(w.result?.line).toBe(c.line);
  });

  it('cleanConsoleLine removes CSI (with any parameter bytes), OSC and charset escapes', () => {
    expect(cleanConsoleLine('\x1b[0;1;38:5:185mDEPEND\x1b[0m')).toBe('DEPEND');
    expect(cleanConsoleLine('\x1b[=3h\x1b[01;01HBdsDxe')).toBe('BdsDxe');
    expect(cleanConsoleLine('\x1b]104\x07\x1b[?7h\x1b[6n\x1b(Bx \t\r')).toBe('x');
  });

  it('tail() includes the unterminated last line and skips empty ones', () => {
    const w = new ConsoleWatcher();
    w.push('one\r\n\r\n\r\ntwo\r\nthr');
    expect(w.tail()).toEqual(['one', 'two', 'thr']);
    expect(w.tail(2)).toEqual(['two', 'thr']);
  });
});

describe('a guest that floods the console without a newline', () => {
  it('is judged in pieces of MAX_LINE: the tail stays bounded and a later login prompt is still seen', () => {
    const watcher = new ConsoleWatcher();
    const junk = 'x'.repeat(4096);
    let searched = 0;
    for (let i = 0; i < 1024; i++) searched += watcher.push(junk).length; // 4 MiB, no newline
    expect(searched).toBe(0);
    expect(watcher.tail(3).every((l) => l.length <= MAX_LINE)).toBe(true);
    expect(watcher.tail(1000).join('').length).toBeLessThanOrEqual(201 * MAX_LINE);
    const events = watcher.push('\r\nDebian GNU/Linux 13 debian ttyS0\r\n\r\ndebian login: ');
    expect(events.map((e) => e.type)).toContain('login');
  });

  it('fails the boot once the console passed its limit without a login prompt, once, with the last line', () => {
    const watcher = new ConsoleWatcher(200, 1024 * 1024);
    const events: ConsoleEvent[] = [];
    for (let i = 0; i < 300; i++) events.push(...watcher.push(`[ ${i}] spam spam spam ${'x'.repeat(4000)}\n`));
    const failures = events.filter((e) => e.type === 'failure');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({
      failure: 'console-flood',
      description: expect.stringMatching(
        /^the guest wrote more than 1 MiB to its serial console without reaching a login prompt/,
      ),
      line: expect.stringMatching(/^\[ 2\d\d\] spam spam spam x+$/),
    });
    expect(failures[0].type === 'failure' && failures[0].line.length).toBe(200);
    expect(watcher.result).toBe(failures[0]);
  });

  it('does not count against the limit what comes after the login prompt', () => {
    const watcher = new ConsoleWatcher(200, 64 * 1024);
    expect(watcher.push('debian login: ').map((e) => e.type)).toEqual(['login']);
    for (let i = 0; i < 100; i++) expect(watcher.push('y'.repeat(4096) + '\n')).toEqual([]);
    expect(watcher.result?.type).toBe('login');
  });
});
