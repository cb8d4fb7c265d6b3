import { constants } from 'node:fs'
import { open, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'

/** A key file that could not be written; the message names the file and what to do. */
export class KeyFileError extends Error {}

const WHY: Record<string, string> = {
  EEXIST: 'it already exists (a key of an earlier database? move it away first)',
  ENOENT: 'its directory does not exist',
  ENOTDIR: 'a part of its path is not a directory',
  EACCES: 'permission denied',
  ELOOP: 'it is a symbolic link',
  ENOSPC: 'the disk is full',
  EROFS: 'the file system is read-only',
}

/**
 * Writes a secret to a new file that only this user can read, and makes it durable
 * before returning: `O_CREAT | O_EXCL | O_NOFOLLOW` (never an existing file, never
 * through a symbolic link), mode 0600 checked after creation (a default ACL may widen
 * what `open` asked for), then fsync of the file and of its directory. On failure the
 * partial file is removed and a KeyFileError says why.
 */
export async function writeKeyFile(path: string, secret: string): Promise<void> {
  const handle = await open(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  ).catch((error: unknown) => {
    throw keyFileError(path, error)
  })
  try {
    await handle.chmod(0o600)
    const info = await handle.stat()
    if (!info.isFile() || (info.mode & 0o077) !== 0 || (process.getuid && info.uid !== process.getuid())) {
      throw new KeyFileError(`cannot write the key to ${path}: it would be readable by another user`)
    }
    await handle.writeFile(`${secret}\n`)
    await handle.sync()
    await handle.close()
  } catch (error) {
    await handle.close().catch(() => {})
    await unlink(path).catch(() => {})
    throw keyFileError(path, error)
  }
  await syncDirectory(dirname(path))
}

/** Makes a new directory entry survive a crash; best effort, as some file systems cannot sync a directory. */
async function syncDirectory(path: string): Promise<void> {
  try {
    const directory = await open(path, constants.O_RDONLY)
    await directory.sync().finally(() => directory.close())
  } catch {}
}

function keyFileError(path: string, error: unknown): KeyFileError {
  if (error instanceof KeyFileError) return error
  const code = (error as { code?: string }).code ?? ''
  const why = WHY[code] ?? (error instanceof Error ? error.message : String(error))
  return new KeyFileError(`cannot write the key to ${path}: ${why}`, { cause: error })
}
