import { renameSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { profileBytes } from './measures.ts'

/**
 * Preloaded into every server the bench starts (`--import heap-sampler.ts`), idle until
 * asked: the first SIGUSR2 starts V8's sampling heap profiler with objects collected by
 * either GC kept (garbage counts: P10 is bytes allocated, not bytes retained), the
 * next stops it and writes `{ bytes }` — the profile's estimate of every byte allocated
 * meanwhile — to BENCH_HEAP_FILE. Each step writes the file, so the bench knows when it
 * has happened.
 */
const file = process.env.BENCH_HEAP_FILE
if (file) {
  const session = new Session()
  session.connect()
  let sampling = false
  process.on('SIGUSR2', () => {
    const step = sampling
      ? session.post('HeapProfiler.stopSampling').then(({ profile }) => {
          sampling = false
          return JSON.stringify({ bytes: profileBytes(profile.head) })
        })
      : session
          .post('HeapProfiler.startSampling', {
            samplingInterval: 1024,
            includeObjectsCollectedByMajorGC: true,
            includeObjectsCollectedByMinorGC: true,
          })
          .then(() => {
            sampling = true
            return JSON.stringify({ started: true })
          })
    // Written whole, then renamed: the bench never reads half an answer.
    const answer = (text: string) => {
      writeFileSync(`${file}.part`, text)
      renameSync(`${file}.part`, file)
    }
    step.then(answer, (error: unknown) => answer(JSON.stringify({ error: String(error) })))
  })
}
