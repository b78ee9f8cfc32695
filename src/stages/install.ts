import type { Stage } from '../context.js';
import { StageError } from '../errors.js';

/** How the image boots: from its own boot loader, or with a kernel QEMU loads (mmdebstrap images). */
export type BootSpec = { kind: 'disk' } | { kind: 'direct'; kernel: string; initrd: string; append: string };

export interface InstallResult {
  summary: string;
  /** The raw disk image (image/qemu.img). */
  image: string;
  boot: BootSpec;
}

export const install: Stage<'install'> = {
  name: 'install',
  skipReason: (config) => (config.install ? undefined : 'install: false'),
  run() {
    return Promise.reject(new StageError('install', 'not implemented yet'));
  },
};
