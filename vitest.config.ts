import { chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * The integration suite runs in two lanes side by side, one file at a time in each: the long lane holds the two
 * runs whose VM is busy for a quarter of an hour or more (grml-debootstrap end to end, the release upgrade) and the
 * boot cases, which even the lanes out; the other lane the rest. Measured on 2026-12-05 with boot.test.ts (185 s) in
 * the other lane: 2357 s and 2677 s. One vitest runs these projects
 * one after the other (measured), so scripts/test.sh starts the long lane as a vitest of its own. Each lane has a
 * temp dir of its own, so that a run's check for scratch directories it left behind sees
 * only its own lane's (the builders' /dev/shm is shared: __tests__/support/leftovers.ts).
 */
const LONG_LANE = [
  '__tests__/integration/grml-debootstrap.test.ts',
  '__tests__/integration/upgrade.test.ts',
  '__tests__/integration/boot.test.ts',
];

function laneTmp(name: string): string {
  const dir = join(tmpdir(), `debian-vm-ci-lane-${name}`);
  mkdirSync(dir, { recursive: true });
  // Like /tmp: the runs' sub-uids and the non-root runner user make their scratch directories in it. A vitest
  // run by another user than the one that made it (process-stop-as-user.test.ts) finds it so already.
  try {
    chmodSync(dir, 0o1777);
  } catch {
    /* not ours: whoever made it made it 1777 */
  }
  return dir;
}

const integration = {
  testTimeout: 60 * 60 * 1000,
  hookTimeout: 60 * 60 * 1000,
  // VMs and package builds share two cores: one file at a time in each lane.
  fileParallelism: false,
};

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['__tests__/**/*.test.ts'],
          exclude: ['__tests__/integration/**'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['__tests__/integration/**/*.test.ts'],
          exclude: LONG_LANE,
          env: { TMPDIR: laneTmp('main') },
          ...integration,
        },
      },
      {
        test: {
          name: 'integration-long',
          include: LONG_LANE,
          env: { TMPDIR: laneTmp('long') },
          ...integration,
        },
      },
    ],
  },
});
