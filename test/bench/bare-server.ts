import express from 'express'

/**
 * SPEC §11's baseline: a bare express JSON route doing a Map lookup, answering in the
 * shape tRPC gives `token.verify`. Stock express 5 settings, as a service would start.
 */
const entries = new Map<string, unknown>(JSON.parse(process.env.BARE_ENTRIES ?? '[]'))
const app = express()
app.use(express.json())
app.post('/verify', (req, res) => {
  res.json({ result: { data: entries.get(req.body?.token) ?? { valid: false } } })
})
app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' })
})
app.listen(Number(process.env.PORT), '127.0.0.1')
