import type { Stage } from '../context.js';
import { StageError } from '../errors.js';

export interface GuestVm {
  /** Powers the guest off (kills QEMU after a deadline); safe to call twice. */
  shutdown(reason: string): Promise<void>;
}

export interface BootResult {
  summary: string;
  vm: GuestVm;
  bootSeconds: number;
}

export const boot: Stage<'boot'> = {
  name: 'boot',
  skipReason: (config) => (config.install ? undefined : 'install: false'),
  run() {
    return Promise.reject(new StageError('boot', 'not implemented yet'));
  },
};
