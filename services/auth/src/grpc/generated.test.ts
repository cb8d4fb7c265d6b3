import { execFileSync } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const serviceDir = join(dirname(fileURLToPath(import.meta.url)), '../..')

async function files(dir: string): Promise<Map<string, string>> {
  const found = new Map<string, string>()
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath, entry.name)
    found.set(relative(dir, path), await readFile(path, 'utf8'))
  }
  return found
}

describe('the generated gRPC types', () => {
  it('are what proto-loader-gen-types makes of the repository .proto files today', async () => {
    const script = JSON.parse(await readFile(join(serviceDir, 'package.json'), 'utf8')).scripts['proto:types'] as string
    const out = await mkdtemp(join(tmpdir(), 'tokend-proto-types-'))
    try {
      const args = script
        .split(' ')
        .slice(1)
        .map((arg) => (arg.startsWith('--outDir=') ? `--outDir=${out}` : arg))
      execFileSync(join(serviceDir, 'node_modules/.bin/proto-loader-gen-types'), args, { cwd: serviceDir })
      // Run `pnpm --filter @tokend/auth proto:types` after changing a .proto file.
      expect(await files(out)).toEqual(await files(join(serviceDir, 'src/grpc/generated')))
    } finally {
      await rm(out, { recursive: true, force: true })
    }
  })
})
