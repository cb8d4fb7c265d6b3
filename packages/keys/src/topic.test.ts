import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type DirectResource, directTopic, mayDirectSubscribe } from './topic.ts'

const part = fc.string({ minLength: 1, maxLength: 40 }).filter((value) => !value.includes(':'))
const resource = fc.record({ accountId: part, resourceType: part, resourceId: part })

describe('topic rule for direct tokens', () => {
  it('allows the 4-part topic of its own resource', () => {
    fc.assert(fc.property(resource, (own) => mayDirectSubscribe(own, directTopic(own))))
    const own = { accountId: 'acc_01JX', resourceType: 'ai', resourceId: 'a1b2c3d4-e5f6-7890-abcd-ef1234567890' }
    expect(mayDirectSubscribe(own, 'customer_id:acc_01JX:ai:a1b2c3d4-e5f6-7890-abcd-ef1234567890')).toBe(true)
  })

  it('refuses the broader 2- and 3-part topics of its own account', () => {
    fc.assert(
      fc.property(resource, (own) => {
        const [head, accountId, type] = directTopic(own).split(':')
        return (
          !mayDirectSubscribe(own, `${head}:${accountId}`) &&
          !mayDirectSubscribe(own, `${head}:${accountId}:${type}`) &&
          !mayDirectSubscribe(own, `${head}:${accountId}:${type}:`)
        )
      }),
    )
  })

  it('refuses any topic that differs in any part, or has more parts', () => {
    fc.assert(
      fc.property(resource, fc.integer({ min: 0, max: 3 }), part, (own, index, other) => {
        const parts = directTopic(own).split(':')
        fc.pre(parts[index] !== other)
        parts[index] = other
        return !mayDirectSubscribe(own, parts.join(':')) && !mayDirectSubscribe(own, `${directTopic(own)}:${other}`)
      }),
    )
  })

  it('refuses every topic for another resource', () => {
    fc.assert(
      fc.property(resource, resource, (own, theirs) => {
        fc.pre(directTopic(own) !== directTopic(theirs))
        return !mayDirectSubscribe(own, directTopic(theirs))
      }),
    )
  })

  it('refuses everything for a resource whose parts could be read two ways', () => {
    fc.assert(
      fc.property(resource, fc.string({ maxLength: 60 }), (own, topic) => {
        const ambiguous: DirectResource = { ...own, resourceType: `${own.resourceType}:x` }
        const empty: DirectResource = { ...own, resourceId: '' }
        return (
          !mayDirectSubscribe(ambiguous, topic) &&
          !mayDirectSubscribe(ambiguous, directTopic(ambiguous)) &&
          !mayDirectSubscribe(empty, directTopic(empty))
        )
      }),
    )
  })
})
