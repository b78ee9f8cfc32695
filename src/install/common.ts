import type { Architecture } from '../config.js';

export function kernelPackage(arch: Architecture): string {
  return arch === 'arm64' ? 'linux-image-arm64' : 'linux-image-amd64';
}

export function serialConsole(arch: Architecture): string {
  return arch === 'arm64' ? 'ttyAMA0' : 'ttyS0';
}
