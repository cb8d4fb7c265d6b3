#!/usr/bin/env node
// The source is TypeScript and nothing is built (as everywhere in this repository):
// tsx compiles it on the fly.
import { register } from 'tsx/esm/api'

register()
await import('../src/main.ts')
