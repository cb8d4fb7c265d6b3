import { defineConfig } from 'tsup'

// JavaScript and type declarations for use outside the monorepo (npm pack); inside it,
// the `tokend-source` export condition points tsc, vitest and tsx at src/ instead.
export default defineConfig({
  entry: ['src/index.ts'],
  format: 'esm',
  target: 'node20',
  platform: 'node',
  dts: true,
  clean: true,
  sourcemap: true,
})
