/** What a direct token reaches: one resource of one account. */
export interface DirectResource {
  accountId: string
  resourceType: string
  resourceId: string
}

const TOPIC_HEAD = 'customer_id'

/** A topic part: not empty, and no `:` (the separator), so a topic splits one way only. */
export function isTopicPart(value: string): boolean {
  return value.length > 0 && !value.includes(':')
}

/** The one topic a direct token may subscribe to: `customer_id:<account id>:<resource type>:<resource id>`. */
export function directTopic(resource: DirectResource): string {
  return `${TOPIC_HEAD}:${resource.accountId}:${resource.resourceType}:${resource.resourceId}`
}

/**
 * SPEC §8's topic rule: a direct token may subscribe only to the 4-part topic of its
 * own resource. Broader 2- and 3-part topics (`customer_id:<id>`,
 * `customer_id:<id>:<type>`), other resources and malformed topics are refused.
 *
 * @example
 * mayDirectSubscribe(resource, `customer_id:${resource.accountId}:ai:${resource.resourceId}`) // true
 * mayDirectSubscribe(resource, `customer_id:${resource.accountId}`) // false
 */
export function mayDirectSubscribe(resource: DirectResource, topic: string): boolean {
  const { accountId, resourceType, resourceId } = resource
  if (!isTopicPart(accountId) || !isTopicPart(resourceType) || !isTopicPart(resourceId)) return false
  return topic === directTopic(resource)
}
