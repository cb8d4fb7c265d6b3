import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

/** Debian's chromium, which playwright-core drives (no browser download is possible here). */
export const CHROMIUM = '/usr/bin/chromium'

/**
 * Makes sure /usr/bin/chromium is there: on a fresh Debian machine, as root with apt,
 * it installs the `chromium` package (once, a minute or two); anywhere else it says
 * what to install.
 */
export function ensureChromium(): string {
  if (existsSync(CHROMIUM)) return CHROMIUM
  const root = process.getuid?.() === 0
  const apt = existsSync('/usr/bin/apt-get')
  if (!root || !apt) {
    throw new Error(
      `The console tests need Debian's chromium at ${CHROMIUM}: run \`apt-get install -y chromium\` as root ` +
        `(${apt ? 'not root here' : 'apt-get is not available here'}).`,
    )
  }
  process.stderr.write(`console tests: ${CHROMIUM} is missing; installing Debian's chromium with apt-get…\n`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  execFileSync('apt-get', ['update'], { stdio: 'inherit', env })
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], { stdio: 'inherit', env })
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium, but ${CHROMIUM} is still missing`)
  return CHROMIUM
}
