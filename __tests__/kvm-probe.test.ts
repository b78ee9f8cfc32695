import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { KVM_PROBE } from '../src/vm/probe/kvm-probe.js';

const elf = (arch: 'amd64' | 'arm64'): Buffer => Buffer.from(KVM_PROBE[arch].elfBase64, 'base64');

describe('the KVM probe payloads', () => {
  for (const arch of ['amd64', 'arm64'] as const) {
    it(`${arch}: is exactly what its assembly source assembles to`, () => {
      const built = execFileSync('sh', ['scripts/build-kvm-probe.sh', arch], { encoding: 'utf8', timeout: 120_000 }).trim();
      expect(built).toBe(KVM_PROBE[arch].elfBase64);
    });
  }

  it('amd64: is a 32-bit ELF with a multiboot header', () => {
    expect(elf('amd64').subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(elf('amd64')[4]).toBe(1); // ELFCLASS32
    expect(elf('amd64').includes(Buffer.from([0x02, 0xb0, 0xad, 0x1b]))).toBe(true); // 0x1BADB002, little endian
  });

  it("arm64: is a 64-bit AArch64 ELF whose entry lies in the virt machine's RAM", () => {
    const e = elf('arm64');
    expect(e.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(e[4]).toBe(2); // ELFCLASS64
    expect(e.readUInt16LE(18)).toBe(183); // EM_AARCH64
    expect(e.readBigUInt64LE(24)).toBe(0x40080000n); // e_entry: RAM starts at 1 GiB
  });
});
