import { defineConfig } from 'vitest/config';

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
          // VMs and package builds share two cores: one file at a time.
          fileParallelism: false,
          testTimeout: 60 * 60 * 1000,
          hookTimeout: 60 * 60 * 1000,
        },
      },
    ],
  },
});
