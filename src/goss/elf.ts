import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { architectureOfElfMachine, type Architecture } from '../debian.js';

// What a goss binary is built for: its ELF architecture and the glibc it needs; and dotted version order.

/** The architecture in a Linux ELF header (e_machine), or undefined for anything else. */
export function elfArchitecture(path: string): Architecture | undefined {
  const header = Buffer.alloc(20);
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    if (readSync(fd, header, 0, 20, 0) < 20) return undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (header.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const machine = header[5] === 2 ? header.readUInt16BE(18) : header.readUInt16LE(18);
  return architectureOfElfMachine(machine);
}

/** The highest GLIBC_x.y symbol version a binary refers to; undefined for a static binary. */
export function requiredGlibc(path: string): string | undefined {
  const text = readFileSync(path).toString('latin1');
  const versions = [...new Set(text.match(/GLIBC_\d+\.\d+(?:\.\d+)?/g) ?? [])].map((v) => v.slice('GLIBC_'.length));
  return versions.sort(compareVersions).at(-1);
}

/** Orders dotted versions ("2.31" < "2.34" < "2.34.1"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
