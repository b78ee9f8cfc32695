import type { Stage } from '../context.js';
import { StageError } from '../errors.js';

export interface ValidateResult {
  summary: string;
  tests: number;
  failures: number;
  skipped: number;
}

export const validate: Stage<'validate'> = {
  name: 'validate',
  skipReason: (config) => (!config.install ? 'install: false' : config.validate ? undefined : 'validate: false'),
  run() {
    return Promise.reject(new StageError('validate', 'not implemented yet'));
  },
};
