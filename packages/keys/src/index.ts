export {
  checksum,
  crc32,
  digestBytes,
  digestKey,
  ENVIRONMENTS,
  type Environment,
  generateKey,
  isValidPrefix,
  type ParsedKey,
  parseKey,
} from './key-format.ts'
export { type DirectResource, directTopic, isTopicPart, mayDirectSubscribe } from './topic.ts'
