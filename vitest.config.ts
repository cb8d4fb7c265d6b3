import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    globalSetup: ['packages/testing/src/global-setup.ts'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['{packages,services}/*/src/**/*.test.ts'] } },
      {
        extends: true,
        test: { name: 'integration', include: ['{packages,services}/*/test/**/*.test.ts', 'test/**/*.test.ts'] },
      },
    ],
    testTimeout: 30_000,
    hookTimeout: 120_000,
  },
})
