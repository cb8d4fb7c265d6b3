import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const SBIN = ['/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin']

function find(binary: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), ...SBIN]
  return dirs.map((dir) => join(dir, binary)).find((path) => existsSync(path))
}

/**
 * A program from Debian's packages that a test drives (nginx, chromium): found on PATH
 * or in sbin, else installed with apt-get when this runs as root on Debian (as the
 * README's test command does on a fresh machine), else the reason, at once.
 *
 * Test files run in parallel, and apt's own locks make a second `apt-get update` fail
 * rather than wait (leaving a fresh machine's empty index): so every install of the run
 * goes through one flock, and each looks again for its program once it holds it.
 */
export async function ensureDebianProgram(binary: string, pkg = binary): Promise<string> {
  const found = find(binary)
  if (found) return found
  const missing = `${binary} is not installed: run \`apt-get install -y ${pkg}\` as root`
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) throw new Error(`${missing} (this test cannot).`)
  process.stderr.write(`${binary} is missing; installing Debian's ${pkg} with apt-get…\n`)
  const apt = 'apt-get -q -o DPkg::Lock::Timeout=300'
  const install = `PATH="$PATH:${SBIN.join(':')}" command -v ${binary} >/dev/null ||
    { ${apt} update || true; ${apt} install -y --no-install-recommends ${pkg}; }`
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  await promisify(execFile)('flock', ['/tmp/tokend-tests-apt.lock', 'sh', '-c', install], {
    env,
    timeout: 600_000,
  }).catch((error: Error) => {
    throw new Error(`${missing}; apt-get said: ${error.message.split('\n').slice(-3).join(' ')}`)
  })
  const installed = find(binary)
  if (!installed) throw new Error(`apt-get installed ${pkg}, but ${binary} is still missing`)
  return installed
}
