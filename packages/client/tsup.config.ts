import { defineConfig } from 'tsup'

// For services outside the monorepo (npm pack): @tokend/keys is bundled in, and the
// declarations take tokend's wire types from src/published-auth-types.ts, so neither
// @tokend/keys nor @tokend/auth is a dependency.
export default defineConfig({
  entry: ['src/index.ts'],
  format: 'esm',
  target: 'node20',
  platform: 'node',
  noExternal: [/^@tokend\//],
  esbuildOptions(options) {
    options.conditions = ['tokend-source']
  },
  dts: {
    resolve: [/^@tokend\//],
    // The router is `any` there: emit without checking again (`pnpm typecheck` checks with the real one).
    compilerOptions: {
      paths: { '@tokend/auth': ['./src/published-auth-types.ts'], '@tokend/keys': ['../keys/src/index.ts'] },
      noCheck: true,
    },
  },
  clean: true,
  sourcemap: true,
})
