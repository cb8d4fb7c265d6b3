export {
  checksum,
  crc32,
  digestKey,
  ENVIRONMENTS,
  type Environment,
  generateKey,
  isValidPrefix,
  type ParsedKey,
  parseKey,
} from './key-format.ts'
