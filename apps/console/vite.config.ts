import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// `pnpm dev:console` serves the console with hot reload and sends its API calls to a
// running tokend (TOKEND_URL, default http://127.0.0.1:3000), so they stay same-origin.
const tokend = process.env.TOKEND_URL ?? 'http://127.0.0.1:3000'

export default defineConfig({
  base: '/console/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    // Nothing inline: the CSP (services/auth/src/console/assets.ts) allows only 'self'.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
  server: {
    port: 5173,
    strictPort: false,
    proxy: {
      '/trpc': { target: tokend, changeOrigin: false },
      '/console/api': { target: tokend, changeOrigin: false },
    },
  },
})
