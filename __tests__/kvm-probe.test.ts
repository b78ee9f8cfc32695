import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { KVM_PROBE_ELF_BASE64 } from '../src/vm/probe/kvm-probe.js';

describe('the KVM probe payload', () => {
  it('is exactly what kvm-probe.S assembles to', () => {
    const built = execFileSync('sh', ['scripts/build-kvm-probe.sh'], { encoding: 'utf8', timeout: 120_000 }).trim();
    expect(built).toBe(KVM_PROBE_ELF_BASE64);
  });

  it('is a 32-bit ELF with a multiboot header', () => {
    const elf = Buffer.from(KVM_PROBE_ELF_BASE64, 'base64');
    expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(elf[4]).toBe(1); // ELFCLASS32
    expect(elf.includes(Buffer.from([0x02, 0xb0, 0xad, 0x1b]))).toBe(true); // 0x1BADB002, little endian
  });
});
