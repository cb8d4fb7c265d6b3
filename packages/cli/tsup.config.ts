import { defineConfig } from 'tsup'

// The `tokend` binary and its `run()` for use outside the monorepo (npm pack), with every
// dependency bundled in: nothing to compile or resolve at start-up, nothing to install
// beside it. Declarations as for @tokend/client (see its tsup.config.ts).
export default defineConfig({
  entry: { tokend: 'src/main.ts', index: 'src/index.ts' },
  format: 'esm',
  target: 'node20',
  platform: 'node',
  noExternal: [/./],
  // commander is CommonJS: its require() calls need one inside the ES module.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  esbuildOptions(options) {
    options.conditions = ['tokend-source']
  },
  dts: {
    entry: { index: 'src/index.ts' },
    resolve: [/^@tokend\//],
    compilerOptions: {
      paths: { '@tokend/auth': ['../client/src/published-auth-types.ts'] },
      noCheck: true,
    },
  },
  clean: true,
})
