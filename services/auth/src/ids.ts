import { ulid } from 'ulid'

/** Time-ordered ids with a type prefix (`tok_01J…`), so a log line explains itself and ids sort by creation. */
export function newId(prefix: 'acc' | 'tok' | 'aud' | 'usr' | 'ses' | 'dir' | 'sk' | 'drv'): string {
  return `${prefix}_${ulid()}`
}
