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
  const { startEmbeddedPostgres } = await import('./postgres.ts')
  const postgres = await startEmbeddedPostgres()
  project.provide('postgresUrl', postgres.url)
  return () => postgres.destroy()
}
