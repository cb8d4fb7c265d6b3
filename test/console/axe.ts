import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { Page } from 'playwright-core'

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

export interface Violation {
  id: string
  impact: string | null
  help: string
  targets: string[]
}

/**
 * Runs axe-core on the page as it is now and returns its serious and critical
 * violations. The script goes in through the DevTools protocol, which the page's CSP
 * does not govern (a <script> tag would be refused, as it should be).
 */
export async function seriousViolations(page: Page): Promise<Violation[]> {
  await page.evaluate(axeSource)
  const violations = await page.evaluate(async () => {
    const { axe, document } = globalThis as any
    const result = await axe.run(document, { resultTypes: ['violations'] })
    return result.violations.map((violation: any) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      targets: violation.nodes.map((node: any) => String(node.target)),
    }))
  })
  return (violations as Violation[]).filter((violation) => ['serious', 'critical'].includes(violation.impact ?? ''))
}
