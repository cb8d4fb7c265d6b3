export {
  type CredentialKind,
  credentialKind,
  type Found,
  findCredential,
  MAX_CREDENTIAL_LENGTH,
} from './credentials.ts'
export {
  type AuthErrorCode,
  challenge,
  type DenialReason,
  denialRefusal,
  problemRefusal,
  type Refusal,
} from './denials.ts'
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
