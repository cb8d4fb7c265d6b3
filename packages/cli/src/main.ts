#!/usr/bin/env node
import { run } from './program.ts'

// `tokend keys list | head` closes the pipe early: stop quietly, as other commands do.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error
  process.exit()
})

process.exitCode = await run(process.argv.slice(2), process.env)
