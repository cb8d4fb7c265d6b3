/** Pure helpers of the bench's per-request measures (CPU time, allocation), kept apart to be tested. */

/**
 * utime + stime of a `/proc/<pid>/stat` line, in clock ticks. The command name (field 2)
 * sits in parentheses and may hold spaces or parentheses itself, so fields are counted
 * from the last `)`.
 */
export function cpuTicks(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`not a /proc stat line: ${stat}`)
  return utime + stime
}

/** A node of V8's sampling heap profile (HeapProfiler.SamplingHeapProfileNode). */
export interface HeapProfileNode {
  selfSize: number
  children: HeapProfileNode[]
}

/**
 * The bytes a sampling heap profile stands for: V8 scales each sample to the
 * allocations it represents, so the nodes' `selfSize` add up to an estimate of all
 * bytes allocated while sampling.
 */
export function profileBytes(head: HeapProfileNode): number {
  let bytes = 0
  const stack = [head]
  for (let node = stack.pop(); node; node = stack.pop()) {
    bytes += node.selfSize
    stack.push(...node.children)
  }
  return bytes
}
