import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import type { ProtoGrpcType as AuthorizationProto } from './generated/external_auth.ts'
import type { ProtoGrpcType as TokensProto } from './generated/tokens.ts'

/**
 * How the .proto files become JavaScript objects, here and in the generated types
 * (`pnpm --filter @tokend/auth proto:types` passes the same options to
 * proto-loader-gen-types): camelCase fields, 64-bit integers as numbers, enums as
 * names, every field present with its default, and a oneof's chosen field named.
 */
export const LOADER_OPTIONS: protoLoader.Options = { longs: Number, enums: String, defaults: true, oneofs: true }

/** The files tokend serves, relative to the repository's proto/ folder. */
export const PROTO_FILES = ['tokend/v1/tokens.proto', 'envoy/service/auth/v3/external_auth.proto']

/**
 * The repository's proto/ folder: found upwards from this module, so the same code
 * finds it in the source tree and beside the production bundle (tsup copies it to dist/proto).
 */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const candidate = join(dir, 'proto')
    if (existsSync(join(candidate, PROTO_FILES[0] as string))) return candidate
    const parent = dirname(dir)
    if (parent === dir) throw new Error('cannot find the proto/ folder with tokend/v1/tokens.proto')
    dir = parent
  }
}

export function loadProtos() {
  const definition = protoLoader.loadSync(PROTO_FILES, { ...LOADER_OPTIONS, includeDirs: [protoDir()] })
  const loaded = grpc.loadPackageDefinition(definition) as unknown as TokensProto & AuthorizationProto
  return {
    definition,
    tokens: loaded.tokend.v1.Tokens.service,
    authorization: loaded.envoy.service.auth.v3.Authorization.service,
  }
}
