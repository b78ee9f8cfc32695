import type { Stage } from '../context.js';
import { StageError } from '../errors.js';

export interface PublishResult {
  summary: string;
}

export const publish: Stage<'publish'> = {
  name: 'publish',
  skipReason: () => undefined,
  run() {
    return Promise.reject(new StageError('publish', 'not implemented yet'));
  },
};
