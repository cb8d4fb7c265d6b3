import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { createTokendClient, type TokendClient } from '@tokend/client'
import { findRepoRoot } from '@tokend/devdb'
import { z } from 'zod'

/**
 * `pnpm demo`: tokend and voice-api together on their embedded Postgres, voice-api's
 * service key and a demo user key provisioned (and reused across restarts while they
 * still verify), then a curl example to try. Ctrl-C stops both.
 */

const root = findRepoRoot()
const config = z
  .object({
    // tokend's own port variable; voice-api's is VOICE_API_PORT here (PORT when run alone).
    PORT: z.coerce.number().int().min(1).max(65_535).default(3000),
    VOICE_API_PORT: z.coerce.number().int().min(1).max(65_535).default(3100),
    TOKEND_DATA_DIR: z.string().min(1).default(join(root, '.data/tokend')),
    VOICE_API_DATA_DIR: z.string().min(1).default(join(root, '.data/voice-api')),
  })
  .parse(process.env)

const children: ChildProcess[] = []
let stopping = false

function run(name: string, dir: string, env: Record<string, string>, ready: RegExp): Promise<ChildProcess> {
  const serviceDir = join(root, dir)
  // The demo runs on the embedded default: a DATABASE_URL meant for something else must not leak in.
  const { DATABASE_URL: _ignored, PORT: _port, ...inherited } = process.env
  const child = spawn(process.execPath, ['--enable-source-maps', 'dist/main.js'], {
    cwd: serviceDir,
    env: { ...inherited, HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  return new Promise((resolveReady, reject) => {
    let seen = ''
    const forward = (chunk: Buffer) => {
      const text = String(chunk)
      seen += text
      for (const line of text.split('\n')) if (line) process.stdout.write(`${name} │ ${line}\n`)
      if (ready.test(seen)) resolveReady(child)
    }
    child.stdout?.on('data', forward)
    child.stderr?.on('data', forward)
    child.on('exit', (code) => {
      reject(new Error(`${name} exited with ${code}`))
      if (!stopping) void stop(1)
    })
  })
}

/** A stored key if it still verifies with `require`, otherwise a new one from `create`, stored with mode 0600. */
async function keyFile(
  file: string,
  admin: TokendClient,
  require: { scopes: string[] },
  create: () => Promise<string>,
): Promise<'reused' | 'created'> {
  if (existsSync(file)) {
    const stored = (await readFile(file, 'utf8')).trim()
    if ((await admin.verify(stored, require)).valid) return 'reused'
  }
  await mkdir(dirname(file), { recursive: true })
  await writeFile(file, `${await create()}\n`, { mode: 0o600 })
  await chmod(file, 0o600) // the mode above only applies to a new file
  return 'created'
}

async function stop(code: number): Promise<void> {
  if (stopping) return
  stopping = true
  // voice-api first: it holds a stream open on tokend, which tokend would wait for.
  for (const child of [...children].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue
    const exited = new Promise((done) => child.once('exit', done))
    child.kill('SIGTERM')
    await exited
  }
  process.exit(code)
}

process.on('SIGINT', () => void stop(0))
process.on('SIGTERM', () => void stop(0))

try {
  const tokendUrl = `http://127.0.0.1:${config.PORT}`
  await run('tokend', 'services/auth', { PORT: String(config.PORT) }, /"msg":"tokend listening"/)
  const bootstrapFile = join(config.TOKEND_DATA_DIR, 'bootstrap.key')
  const bootstrapKey = (await readFile(bootstrapFile, 'utf8').catch(() => '')).trim()
  if (!bootstrapKey) throw new Error(`no bootstrap key in ${bootstrapFile}`)
  const admin = createTokendClient({ url: tokendUrl, serviceKey: bootstrapKey })

  const serviceKeyFile = join(config.VOICE_API_DATA_DIR, 'service.key')
  const service = await keyFile(serviceKeyFile, admin, { scopes: ['tokend:verify'] }, async () => {
    const issued = await admin.trpc.token.issue.mutate({
      name: 'voice-api',
      detail: 'pnpm demo: voice-api verifies its callers with this key',
      environment: 'live',
      scopes: ['tokend:verify'],
    })
    return issued.token
  })
  const userKeyFile = join(config.VOICE_API_DATA_DIR, 'demo-user.key')
  const user = await keyFile(userKeyFile, admin, { scopes: ['recordings:read', 'recordings:write'] }, async () => {
    const account = await admin.trpc.account.create.mutate({ name: 'demo customer', plan: 'paid' })
    const issued = await admin.trpc.token.issue.mutate({
      name: 'demo user',
      environment: 'test',
      scopes: ['recordings:read', 'recordings:write'],
      expiresIn: '90d',
      accountId: account.id,
    })
    return issued.token
  })
  admin.close()

  await run(
    'voice-api',
    'services/voice-api',
    {
      PORT: String(config.VOICE_API_PORT),
      TOKEND_URL: tokendUrl,
      TOKEND_SERVICE_KEY_FILE: serviceKeyFile,
      TOKEND_CACHE: 'on',
      VOICE_API_DATA_DIR: config.VOICE_API_DATA_DIR,
    },
    /"msg":"voice-api listening"/,
  )

  const shown = relative(root, userKeyFile).startsWith('..') ? userKeyFile : relative(root, userKeyFile)
  const voiceUrl = `http://127.0.0.1:${config.VOICE_API_PORT}`
  process.stdout.write(
    [
      '',
      `demo ready: tokend ${tokendUrl}, voice-api ${voiceUrl} (service key ${service}, demo user key ${user})`,
      'Try, from the repository root:',
      '',
      `  KEY=$(cat ${shown})`,
      `  curl -s ${voiceUrl}/v1/me -H "Authorization: Bearer $KEY"`,
      `  curl -s -X POST ${voiceUrl}/v1/recordings -H "Authorization: Bearer $KEY" -H 'content-type: application/json' -d '{"title":"first call"}'`,
      `  curl -s "${voiceUrl}/v1/recordings?accesskey=$KEY"`,
      '',
      'Ctrl-C stops both.',
      '',
    ].join('\n'),
  )
} catch (error) {
  process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`)
  await stop(1)
}
