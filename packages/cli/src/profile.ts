import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { CliError, EXIT } from './errors.ts'

/** What `tokend login` keeps: the URL and the key, so later commands need neither. */
export interface Profile {
  url?: string
  key?: string
}

/** `$XDG_CONFIG_HOME/tokend/config.json`, else `~/.config/tokend/config.json`. */
export function profilePath(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config')
  return join(base, 'tokend', 'config.json')
}

export function readProfile(env: NodeJS.ProcessEnv): Profile {
  const path = profilePath(env)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return {}
  }
  try {
    const parsed = JSON.parse(text) as Profile
    return {
      url: typeof parsed.url === 'string' ? parsed.url : undefined,
      key: typeof parsed.key === 'string' ? parsed.key : undefined,
    }
  } catch {
    throw new CliError(`${path} is not valid JSON: run tokend login again, or delete it`, EXIT.usage)
  }
}

/** Written with mode 0600 in a 0700 directory: the file holds a key. */
export function writeProfile(env: NodeJS.ProcessEnv, profile: Profile): string {
  const path = profilePath(env)
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  writeFileSync(path, `${JSON.stringify(profile, null, 2)}\n`, { mode: 0o600 })
  chmodSync(path, 0o600) // the mode above only applies to a new file
  return path
}

export function removeProfile(env: NodeJS.ProcessEnv): string {
  const path = profilePath(env)
  rmSync(path, { force: true })
  return path
}
