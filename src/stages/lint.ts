import type { Stage } from '../context.js';
import { StageError } from '../errors.js';

export interface LintResult {
  summary: string;
}

export const lint: Stage<'lint'> = {
  name: 'lint',
  skipReason: (config) => (config.lint ? undefined : 'lint: false'),
  run() {
    return Promise.reject(new StageError('lint', 'not implemented yet'));
  },
};
