import type { TokendClient, TokendPrincipal } from '@tokend/client'
import express, { type Request, Router } from 'express'
import { ulid } from 'ulid'
import { z } from 'zod'
import type { Db } from '../db/database.ts'
import type { RecordingRow } from '../db/schema.ts'
import { forbidden, HttpError, notFound } from '../errors.ts'
import { deleteRecording, findRecording, insertRecording, listRecordings } from './recording.repository.ts'

// Postgres cannot store NUL in text; ids are ours, so anything else is not one.
const title = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .refine((value) => !value.includes('\u0000'), 'must not contain NUL characters')
const RECORDING_ID = /^rec_[0-9A-HJKMNP-TV-Z]{26}$/
const newRecording = z.strictObject({ title })
const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().regex(RECORDING_ID, 'not a cursor from this API').optional(),
})

/**
 * The recordings API. Every route is guarded by tokend; data is partitioned by the
 * key's (account, environment): another account's recording is 403, the same
 * account's recording in the other environment does not exist (404).
 */
export function recordingRoutes(db: Db, tokend: TokendClient): Router {
  const router = Router()
  const read = tokend.requireAuth({ scopes: ['recordings:read'] })
  const write = tokend.requireAuth({ scopes: ['recordings:write'] })

  router.get('/me', tokend.requireAuth(), (req, res) => {
    res.json(principal(req))
  })

  router.post('/recordings', write, express.json({ limit: '16kb' }), async (req, res) => {
    const caller = principal(req)
    const input = parse(newRecording, req.body)
    const row = await insertRecording(db, {
      id: `rec_${ulid()}`,
      account_id: caller.accountId,
      environment: caller.environment,
      title: input.title,
      created_by: caller.tokenId,
    })
    res.status(201).json(toRecording(row))
  })

  router.get('/recordings', read, async (req, res) => {
    const caller = principal(req)
    const query = parse(listQuery, req.query)
    const rows = await listRecordings(db, caller, query.limit + 1, query.cursor)
    const items = rows.slice(0, query.limit)
    const nextCursor = rows.length > query.limit ? (items.at(-1)?.id ?? null) : null
    res.json({ items: items.map(toRecording), nextCursor })
  })

  router.get('/recordings/:id', read, async (req, res) => {
    res.json(toRecording(await ownRecording(db, principal(req), String(req.params.id))))
  })

  router.delete('/recordings/:id', write, async (req, res) => {
    const caller = principal(req)
    const row = await ownRecording(db, caller, String(req.params.id))
    if (!(await deleteRecording(db, caller, row.id))) throw notFound()
    res.status(204).end()
  })

  return router
}

/** The recording if the caller may see it: 403 for another account's, 404 for another environment's. */
async function ownRecording(db: Db, caller: TokendPrincipal, id: string): Promise<RecordingRow> {
  const row = RECORDING_ID.test(id) ? await findRecording(db, id) : undefined
  if (!row) throw notFound()
  if (row.account_id !== caller.accountId) throw forbidden()
  if (row.environment !== caller.environment) throw notFound()
  return row
}

function principal(req: Request): TokendPrincipal {
  if (!req.auth) throw new Error('route is not behind requireAuth')
  return req.auth
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value)
  if (parsed.success) return parsed.data
  const issues = parsed.error.issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
  }))
  const summary = issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; ')
  throw new HttpError(400, 'invalid_input', `invalid input: ${summary}`, issues)
}

function toRecording(row: RecordingRow) {
  return {
    id: row.id,
    title: row.title,
    accountId: row.account_id,
    environment: row.environment,
    createdBy: row.created_by,
    createdAt: row.created_at.toISOString(),
  }
}
