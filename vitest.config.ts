import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Real-process tests start node processes; two cores cannot run many of them at once.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
