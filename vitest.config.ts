import { defineConfig } from 'vitest/config'

// One project: its global setup starts a single embedded Postgres for the whole run
// (with projects, each would start its own). Unit tests sit beside the code as
// src/**/*.test.ts; integration tests in each package's test/ and in the top-level test/.
// Workspace packages are read from source (`tokend-source`), not from their dist/.
// The rest are Vite's defaults for server code.
const conditions = ['tokend-source', 'module', 'node', 'development|production']
export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    globalSetup: ['packages/testing/src/global-setup.ts'],
    include: ['{packages,services}/*/src/**/*.test.ts', '{packages,services}/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
  },
})
