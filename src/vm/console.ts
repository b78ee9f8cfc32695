/**
 * The serial-console watcher: a pure state machine over the console byte stream.
 * It reports boot milestones for progress, success at the login prompt, and each
 * known way a boot goes wrong as soon as its line appears, with that line and the
 * console lines before it.
 */

export type BootFailure =
  | 'no-bootable-device'
  | 'uefi-no-boot-option'
  | 'grub-rescue'
  | 'grub-error'
  | 'kernel-panic'
  | 'initramfs-shell'
  | 'emergency-shell'
  | 'maintenance-prompt'
  | 'serial-getty-failed'
  | 'console-flood';

export type Milestone = 'firmware' | 'bootloader' | 'kernel' | 'initramfs' | 'init' | 'login';

/** `offset`: where the line starts in the console stream (characters since the watcher started). */
export type ConsoleEvent =
  | { type: 'milestone'; milestone: Milestone; line: string; offset: number }
  | { type: 'login'; line: string; offset: number }
  | { type: 'failure'; failure: BootFailure; line: string; offset: number; description: string };

interface Rule {
  failure: BootFailure;
  pattern: RegExp;
  description: string;
  /**
   * Matched against the unterminated last line: a prompt waiting for input never gets its newline.
   * Only whole prompts: `pattern` would match the first half of a line still being written.
   */
  prompt?: RegExp;
}

/** Longer console lines are cut into pieces of this length: no real line is this long, a flooding guest's is. */
export const MAX_LINE = 16 * 1024;

/**
 * Console text before a login prompt beyond which the boot is judged a flood (a real boot prints well under
 * a megabyte, a debug kernel a few): the boot fails there, and serial.log stays bounded.
 */
export const MAX_BOOT_CONSOLE = 64 * 1024 * 1024;

/**
 * Console text after the login beyond which the guest is judged to flood it: our session types short lines and
 * reads the output of commands from the share, so only kernel messages and the echo come back on the console.
 * QEMU is stopped there, and serial.log stays bounded. Under TCG the serial port carries about 90 KB/s (measured):
 * a guest flooding it reaches this in about 90 s.
 */
export const MAX_SESSION_CONSOLE = 8 * 1024 * 1024;

/** A console line that names a failure (what a failed boot's report should lead with). */
const CAUSE_LINE =
  /\[FAILED\]|Dependency failed for|Timed out waiting for device|Failed to (mount|start)|failed with result '|: (Job|Unit) .* failed/;

// Order matters only within one line: the first rule that matches wins.
const FAILURE_RULES: readonly Rule[] = [
  {
    failure: 'no-bootable-device',
    pattern: /Boot failed: not a bootable (disk|device)|No bootable device\.?/,
    description: 'the firmware found nothing to boot on the disk (no boot loader was installed, or the disk is empty)',
  },
  {
    failure: 'uefi-no-boot-option',
    pattern: /No bootable option or device was found|UEFI Interactive Shell|BdsDxe: failed to load Boot\w+ .* Not Found/,
    description: 'the UEFI firmware found no bootable EFI system partition (no EFI boot loader installed?)',
    prompt: /^Shell> ?$/,
  },
  {
    failure: 'grub-rescue',
    pattern: /^grub rescue> ?$|Entering rescue mode\.\.\./,
    description: 'GRUB could not find its modules or configuration and dropped to its rescue prompt',
    prompt: /^grub rescue> ?$/,
  },
  {
    failure: 'grub-error',
    // Only unambiguous signs: GRUB prints harmless "error:" lines on boots that then succeed.
    pattern: /^grub> ?$|error: you need to load the kernel first/,
    description: 'GRUB failed to load its configuration or the kernel',
    prompt: /^grub> ?$/,
  },
  {
    failure: 'kernel-panic',
    pattern: /Kernel panic - not syncing/,
    description: 'the kernel panicked',
  },
  {
    failure: 'initramfs-shell',
    pattern:
      /Gave up waiting for root (file system )?device|Dropping to a shell!|^\(initramfs\) ?$|BusyBox v[\d.]+ .*built-in shell \(ash\)/,
    description:
      'the initramfs could not find or mount the root file system (wrong root= or a missing driver) and dropped to its shell',
    prompt: /^\(initramfs\) ?$/,
  },
  {
    failure: 'maintenance-prompt',
    // trixie's sulogin says "Enter root password for system maintenance".
    pattern:
      /Give root password for maintenance|Enter root password for system maintenance|Press Enter for maintenance|Cannot open access to console, the root account is locked/,
    description: 'systemd entered emergency or rescue mode and asks for the root password (a failed mount in /etc/fstab?)',
    prompt: /\(or press Control-D to continue\): ?$/,
  },
  {
    failure: 'serial-getty-failed',
    // systemd gave up on the serial console's device (90 s by default; udev's coldplug can take longer under TCG):
    // the getty the session logs in through will not start. The status line ellipsizes the unit, not its description.
    pattern: /Dependency failed for .*Serial Getty on (ttyS0|ttyAMA0)\b/,
    description:
      'the getty on the serial console could not start (systemd timed out waiting for its device): no login prompt will come',
  },
  {
    failure: 'emergency-shell',
    // systemd's own status lines come seconds before the shell's banner under TCG.
    pattern:
      /You are in (emergency|rescue) mode|Welcome to (emergency|rescue) mode|Started emergency\.service|Reached target emergency\.target/,
    description: 'systemd entered emergency or rescue mode (a failed mount in /etc/fstab or a failed critical unit)',
  },
];

const MILESTONE_RULES: readonly { milestone: Milestone; pattern: RegExp }[] = [
  { milestone: 'firmware', pattern: /SeaBIOS \(version|BdsDxe: loading|UEFI firmware|EFI stub:/ },
  { milestone: 'bootloader', pattern: /Welcome to GRUB!|GNU GRUB +version|Booting `|Loading Linux/ },
  { milestone: 'kernel', pattern: /Linux version \d/ },
  {
    milestone: 'initramfs',
    pattern: /Loading, please wait\.\.\.|Begin: Loading essential drivers|Run \/init as init process|Freeing unused kernel image/,
  },
  { milestone: 'init', pattern: /systemd\[1\]: |Welcome to .*Debian|Reached target/ },
];

// The kernel may print on the prompt's line before the newline of the next line arrives.
const LOGIN_PROMPT = /(^|\s)\S+ login:(?= ?$| ?\[)/;

// CSI/OSC escape sequences, and the odd control characters consoles emit.
const ESCAPES =
  // eslint-disable-next-line no-control-regex
  /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-B]|\x1b[=>cDEHM78]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;

export function cleanConsoleLine(raw: string): string {
  return raw.replace(ESCAPES, '').replace(/\s+$/, '');
}

export class ConsoleWatcher {
  private pending = '';
  private offset = 0;
  private readonly lines: string[] = [];
  private readonly causeLines: string[] = [];
  private readonly seen = new Set<Milestone>();
  private verdict: ConsoleEvent | undefined;

  constructor(
    private readonly keepLines = 200,
    private readonly maxBootConsole = MAX_BOOT_CONSOLE,
  ) {}

  /** The login or failure event once one was seen; the watcher stops judging after it. */
  get result(): ConsoleEvent | undefined {
    return this.verdict;
  }

  get milestones(): readonly Milestone[] {
    return [...this.seen];
  }

  /** The last console lines (escape sequences removed), including an unterminated one. */
  tail(count = 30): string[] {
    const all = this.pending.trim() ? [...this.lines, cleanConsoleLine(this.pending)] : this.lines;
    return all.slice(-count);
  }

  /** Feeds console bytes; returns the events they complete. */
  push(chunk: string): ConsoleEvent[] {
    const events: ConsoleEvent[] = [];
    this.pending += chunk;
    let nl: number;
    // A CR at the end of the chunk may be the first half of CRLF: it waits for the next chunk.
    while ((nl = this.pending.search(/\r?\n|\r(?=[^\n])/)) >= 0) {
      this.takeLine(nl, this.pending.startsWith('\r\n', nl) ? 2 : 1, events);
    }
    // A guest that floods the console without a newline: its text is judged in pieces of MAX_LINE, so each
    // chunk costs what its own length costs (the whole unterminated line was searched again for every chunk).
    while (this.pending.length > MAX_LINE) this.takeLine(MAX_LINE, 0, events);
    // Prompts wait for input without a newline: judge the unterminated line too.
    const partial = cleanConsoleLine(this.pending);
    if (partial.trim()) this.judge(partial, this.offset, true, events);
    // offset + pending: every character received so far.
    if (!this.verdict && this.offset + this.pending.length > this.maxBootConsole) {
      const mib = Math.round(this.maxBootConsole / 1024 ** 2);
      this.verdict = {
        type: 'failure',
        failure: 'console-flood',
        line: (this.tail(1)[0] ?? '').slice(0, 200),
        offset: this.offset,
        description: `the guest wrote more than ${mib} MiB to its serial console without reaching a login prompt (something prints in a loop)`,
      };
      events.push(this.verdict);
    }
    return events;
  }

  /** Takes the first `length` characters of the pending text as a line (plus `sep` separator characters) and judges it. */
  private takeLine(length: number, sep: number, events: ConsoleEvent[]): void {
    const raw = this.pending.slice(0, length);
    this.pending = this.pending.slice(length + sep);
    const start = this.offset;
    this.offset += length + sep;
    const line = cleanConsoleLine(raw);
    if (line.trim() === '') return;
    this.remember(line);
    this.judge(line, start, false, events);
  }

  private remember(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.keepLines) this.lines.shift();
    if (CAUSE_LINE.test(line)) {
      this.causeLines.push(line);
      if (this.causeLines.length > 10) this.causeLines.shift();
    }
  }

  /**
   * The last console lines that say what failed (systemd's FAILED status lines, failed dependencies,
   * timed-out devices, failed mounts), from the whole boot: on a busy console the tail may no longer reach them.
   */
  causes(): string[] {
    return [...this.causeLines];
  }

  private judge(line: string, offset: number, unterminated: boolean, events: ConsoleEvent[]): void {
    if (this.verdict) return;
    if (!unterminated) {
      for (const rule of MILESTONE_RULES) {
        if (!this.seen.has(rule.milestone) && rule.pattern.test(line)) {
          this.seen.add(rule.milestone);
          events.push({ type: 'milestone', milestone: rule.milestone, line, offset });
        }
      }
    }
    for (const rule of FAILURE_RULES) {
      if ((unterminated ? rule.prompt : rule.pattern)?.test(line)) {
        this.verdict = { type: 'failure', failure: rule.failure, line: line.trim(), offset, description: rule.description };
        events.push(this.verdict);
        return;
      }
    }
    const login = LOGIN_PROMPT.exec(line);
    if (login) {
      this.seen.add('login');
      this.verdict = { type: 'login', line: line.slice(0, login.index + login[0].length).trim(), offset };
      events.push(this.verdict);
    }
  }
}
