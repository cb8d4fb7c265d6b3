import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { repoRoot } from '@tokend/testing'
import { CLIENT_CORE, pinnedCommand } from './processes.ts'
import { type BenchEnv, round, type ScenarioResult, verdict } from './report-types.ts'

/** P9: bytes per cached entry, measured in a process of its own (memory-worker.ts) with `--expose-gc`. */
export async function memoryPerEntry(env: BenchEnv): Promise<ScenarioResult> {
  const { memoryEntries } = env.settings
  env.log(`P9: filling a verification cache with ${memoryEntries} records`)
  const [command, args] = pinnedCommand(CLIENT_CORE, process.execPath, [
    '--expose-gc',
    '--conditions=tokend-source',
    '--import',
    'tsx',
    join(repoRoot, 'test/bench/memory-worker.ts'),
    String(memoryEntries),
  ])
  const { stdout } = await promisify(execFile)(command, args, { cwd: join(repoRoot, 'test') })
  const result = JSON.parse(stdout) as { heapBytes: number; arrayBufferBytes: number; bytesPerEntry: number }
  return {
    figures: [
      {
        id: 'P9',
        figure: 'memory per cached entry',
        measured: result.bytesPerEntry,
        shown: `${Math.round(result.bytesPerEntry)} B`,
        target: '≤ 400 B',
        verdict: verdict(result.bytesPerEntry <= 400),
        notes: [
          `${memoryEntries} realistic KeyRecords in a VerifyCache sized ${memoryEntries}, after gc: ` +
            `${round(result.heapBytes / 2 ** 20, 1)} MiB heap + ${round(result.arrayBufferBytes / 2 ** 20, 1)} MiB ` +
            'typed arrays (lru-cache slots); digests, records and cache bookkeeping all count',
        ],
      },
    ],
    series: [
      {
        name: 'bytes per cached entry (P9)',
        unit: 'B',
        median: round(result.bytesPerEntry, 0),
        repetitions: [round(result.bytesPerEntry, 0)],
      },
    ],
  }
}
