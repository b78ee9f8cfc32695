import * as core from '@actions/core';
import { existsSync } from 'node:fs';
import { ResourceTracker, STATE_RESOURCE_FILE } from './state.js';

// Kept apart from entry.ts so that the post step's bundle stays small (no artifact or cache clients).

/** The action's post step: releases whatever a failed or cancelled main step left running. */
export function actionPost(): void {
  const file = core.getState(STATE_RESOURCE_FILE);
  if (!file || !existsSync(file)) {
    core.info('debian-vm-ci post: nothing to clean up');
    return;
  }
  const tracker = new ResourceTracker(file);
  const done = tracker.releaseAll();
  tracker.dispose();
  core.info(done.length ? `debian-vm-ci post: ${done.join('; ')}` : 'debian-vm-ci post: nothing left running');
}
