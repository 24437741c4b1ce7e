import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Tests start real redis-server and Tally processes; two cores only.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
