import type { Stage } from '../context.js';
import { StageError } from '../errors.js';

export interface PackageResult {
  summary: string;
  /** Absolute paths of the built .deb files, in packages/. */
  debs: string[];
}

export const packageStage: Stage<'package'> = {
  name: 'package',
  skipReason: (config) => (config.buildPackage ? undefined : 'build-package: false'),
  run() {
    return Promise.reject(new StageError('package', 'not implemented yet'));
  },
};
