import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Slow tests build real images and share one registry and the base images they build.
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 600_000,
    // buildah storage and the 2-core machine: build-heavy files run one at a time.
    fileParallelism: false,
  },
});
