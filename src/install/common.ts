import type { Architecture } from '../config.js';

/** Releases after trixie: unstable no longer has isc-dhcp-client (its Packages index of 2026-11). */
const AFTER_TRIXIE = new Set(['forky', 'duke', 'sid', 'testing', 'unstable']);

/** The DHCP client ifupdown uses for `iface eth0 inet dhcp`: dhcpcd after trixie, ISC dhclient before. */
export function dhcpClientPackage(release: string): string {
  return AFTER_TRIXIE.has(release) ? 'dhcpcd-base' : 'isc-dhcp-client';
}

export function kernelPackage(arch: Architecture): string {
  return arch === 'arm64' ? 'linux-image-arm64' : 'linux-image-amd64';
}

export function serialConsole(arch: Architecture): string {
  return arch === 'arm64' ? 'ttyAMA0' : 'ttyS0';
}
