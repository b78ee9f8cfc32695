/** The console watcher's latency through a real unix socket, from a write on the server side to the verdict. */
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { ConsoleWatcher, type BootFailure, type ConsoleEvent } from '../src/vm/console.js';
import { median, percentile, round, sleep } from './util.js';

/**
 * One console line per verdict the watcher gives on a line, as a guest prints it: typed by the product's BootFailure,
 * so a new kind does not compile until it has its line here. console-flood is a matter of volume, not of a line.
 */
export const VERDICT_LINES: Readonly<Record<Exclude<BootFailure, 'console-flood'> | 'login', string>> = {
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
  'serial-getty-failed': '[FAILED] Dependency failed for serial-getty@ttyS0.service - Serial Getty on ttyS0.\r\n',
};

export interface Latency {
  medianUs: number | null;
  p99Us: number | null;
  samples: number;
}

function verdictOf(events: readonly ConsoleEvent[]): string | undefined {
  for (const e of events) {
    if (e.type === 'login') return 'login';
    if (e.type === 'failure') return e.failure;
  }
  return undefined;
}

/** `samples` timed verdicts per kind after 20 warm-up ones, each after the untimed `preamble`. */
export async function watcherLatency(preamble: string, samples: number, work: string): Promise<Record<string, Latency>> {
  const path = join(work, 'watcher.sock');
  let serverSide: Socket | undefined;
  const server = createServer((s) => (serverSide = s));
  await new Promise<void>((r) => server.listen(path, r));
  const client = createConnection(path);
  await new Promise<void>((r) => client.once('connect', r));
  while (!serverSide) await sleep(1);
  const server$ = serverSide;
  client.setEncoding('latin1');
  let watcher = new ConsoleWatcher();
  let received = 0;
  let onData: (events: ConsoleEvent[]) => void = () => undefined;
  client.on('data', (chunk: string) => {
    received += Buffer.byteLength(chunk, 'latin1');
    onData(watcher.push(chunk));
  });
  const write = (text: string): Promise<void> =>
    new Promise((r) => {
      const target = received + Buffer.byteLength(text, 'latin1');
      onData = () => {
        if (received >= target) r();
      };
      server$.write(text, 'latin1');
    });
  const results: Record<string, Latency> = {};
  for (const [kind, line] of Object.entries(VERDICT_LINES)) {
    const us: number[] = [];
    for (let i = 0; i < samples + 20; i++) {
      watcher = new ConsoleWatcher();
      await write(preamble); // not timed: the console up to the verdict line
      const timed = new Promise<[bigint, string]>((r) => {
        onData = (events) => {
          const v = verdictOf(events);
          if (v) r([process.hrtime.bigint(), v]);
        };
      });
      const t0 = process.hrtime.bigint();
      server$.write(line, 'latin1');
      const [t1, got] = await timed;
      if (got !== kind) throw new Error(`the watcher said ${got} for ${JSON.stringify(line)}, expected ${kind}`);
      if (i >= 20) us.push(Number(t1 - t0) / 1000); // the first 20 warm the JIT up
    }
    results[kind] = { medianUs: round(median(us)), p99Us: round(percentile(us, 99)), samples: us.length };
  }
  client.destroy();
  server$.destroy();
  server.close();
  return results;
}
