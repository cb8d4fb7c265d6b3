import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const SBIN = ['/usr/sbin', '/usr/local/sbin']

function find(binary: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), ...SBIN]
  return dirs.map((dir) => join(dir, binary)).find((path) => existsSync(path))
}

/**
 * A program from Debian's packages that a test drives (nginx, chromium): found on PATH
 * or in sbin, else installed with apt-get when this runs as root on Debian (as the
 * README's test command does on a fresh machine), else the reason, at once. Test files
 * run in parallel, so apt waits for another's dpkg lock instead of failing on it.
 */
export async function ensureDebianProgram(binary: string, pkg = binary): Promise<string> {
  const found = find(binary)
  if (found) return found
  const missing = `${binary} is not installed: run \`apt-get install -y ${pkg}\` as root`
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) throw new Error(`${missing} (this test cannot).`)
  process.stderr.write(`${binary} is missing; installing Debian's ${pkg} with apt-get…\n`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const apt = (...args: string[]) =>
    promisify(execFile)('apt-get', ['-o', 'DPkg::Lock::Timeout=300', ...args], { env, timeout: 400_000 })
  await apt('update', '-qq').catch(() => {}) // a stale index may still hold the package
  await apt('install', '-y', '-qq', '--no-install-recommends', pkg).catch((error: Error) => {
    throw new Error(`${missing}; apt-get said: ${error.message.split('\n').slice(-2).join(' ')}`)
  })
  const installed = find(binary)
  if (!installed) throw new Error(`apt-get installed ${pkg}, but ${binary} is still missing`)
  return installed
}
