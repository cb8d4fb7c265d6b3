import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { repoRoot } from '@tokend/testing'
import type { ProtoGrpcType as AuthorizationProto } from '../src/grpc/generated/external_auth.ts'
import type { ProtoGrpcType as TokensProto } from '../src/grpc/generated/tokens.ts'

/**
 * gRPC clients built from the repository's .proto files, as a caller in any language
 * builds its own: nothing of tokend's server code is used.
 */
const OPTIONS = { longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [join(repoRoot, 'proto')] }

export function tokendClients(address: string) {
  const definition = protoLoader.loadSync(
    ['tokend/v1/tokens.proto', 'envoy/service/auth/v3/external_auth.proto'],
    OPTIONS,
  )
  const loaded = grpc.loadPackageDefinition(definition) as unknown as TokensProto & AuthorizationProto
  const credentials = grpc.credentials.createInsecure()
  const tokens = new loaded.tokend.v1.Tokens(address, credentials)
  const authorization = new loaded.envoy.service.auth.v3.Authorization(address, credentials)
  return {
    tokens,
    authorization,
    close() {
      tokens.close()
      authorization.close()
    },
  }
}

/** Metadata carrying `key` as the caller's bearer credential. */
export function bearer(key: string | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata()
  if (key !== undefined) metadata.set('authorization', `Bearer ${key}`)
  return metadata
}

/** A unary call as a promise: the response, or the status error. */
export function call<Req, Res>(
  method: (
    request: Req,
    metadata: grpc.Metadata,
    callback: (error: grpc.ServiceError | null, response?: Res) => void,
  ) => unknown,
  client: grpc.Client,
  request: Req,
  metadata = new grpc.Metadata(),
): Promise<Res> {
  return new Promise((resolve, reject) =>
    method.call(client, request, metadata, (error, response) => (error ? reject(error) : resolve(response as Res))),
  )
}

/** The gRPC status code a rejected call ended with, and its tokend-reason. */
export async function failure(
  promise: Promise<unknown>,
): Promise<{ code: grpc.status; reason: unknown; details: string }> {
  try {
    await promise
  } catch (error) {
    const status = error as grpc.ServiceError
    return { code: status.code, reason: status.metadata?.get('tokend-reason')[0], details: status.details }
  }
  throw new Error('the call succeeded')
}

/** Loads a service from a .proto file elsewhere (health, reflection), as a client would. */
export function clientFor<T>(file: string, includeDir: string, service: string, address: string): T {
  const definition = protoLoader.loadSync(file, { ...OPTIONS, includeDirs: [includeDir] })
  let node: unknown = grpc.loadPackageDefinition(definition)
  for (const part of service.split('.')) node = (node as Record<string, unknown>)[part]
  const Client = node as new (address: string, credentials: grpc.ChannelCredentials) => T
  return new Client(address, grpc.credentials.createInsecure())
}
