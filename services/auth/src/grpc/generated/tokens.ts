import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp';
import type { AccountChanged as _tokend_v1_AccountChanged, AccountChanged__Output as _tokend_v1_AccountChanged__Output } from './tokend/v1/AccountChanged';
import type { BatchVerifyRequest as _tokend_v1_BatchVerifyRequest, BatchVerifyRequest__Output as _tokend_v1_BatchVerifyRequest__Output } from './tokend/v1/BatchVerifyRequest';
import type { BatchVerifyResponse as _tokend_v1_BatchVerifyResponse, BatchVerifyResponse__Output as _tokend_v1_BatchVerifyResponse__Output } from './tokend/v1/BatchVerifyResponse';
import type { ChangeEvent as _tokend_v1_ChangeEvent, ChangeEvent__Output as _tokend_v1_ChangeEvent__Output } from './tokend/v1/ChangeEvent';
import type { KeyChanged as _tokend_v1_KeyChanged, KeyChanged__Output as _tokend_v1_KeyChanged__Output } from './tokend/v1/KeyChanged';
import type { RateLimit as _tokend_v1_RateLimit, RateLimit__Output as _tokend_v1_RateLimit__Output } from './tokend/v1/RateLimit';
import type { Ready as _tokend_v1_Ready, Ready__Output as _tokend_v1_Ready__Output } from './tokend/v1/Ready';
import type { Resource as _tokend_v1_Resource, Resource__Output as _tokend_v1_Resource__Output } from './tokend/v1/Resource';
import type { TokensClient as _tokend_v1_TokensClient, TokensDefinition as _tokend_v1_TokensDefinition } from './tokend/v1/Tokens';
import type { VerifyRequest as _tokend_v1_VerifyRequest, VerifyRequest__Output as _tokend_v1_VerifyRequest__Output } from './tokend/v1/VerifyRequest';
import type { VerifyResponse as _tokend_v1_VerifyResponse, VerifyResponse__Output as _tokend_v1_VerifyResponse__Output } from './tokend/v1/VerifyResponse';
import type { WatchChangesRequest as _tokend_v1_WatchChangesRequest, WatchChangesRequest__Output as _tokend_v1_WatchChangesRequest__Output } from './tokend/v1/WatchChangesRequest';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  google: {
    protobuf: {
      Timestamp: MessageTypeDefinition<_google_protobuf_Timestamp, _google_protobuf_Timestamp__Output>
    }
  }
  tokend: {
    v1: {
      AccountChanged: MessageTypeDefinition<_tokend_v1_AccountChanged, _tokend_v1_AccountChanged__Output>
      BatchVerifyRequest: MessageTypeDefinition<_tokend_v1_BatchVerifyRequest, _tokend_v1_BatchVerifyRequest__Output>
      BatchVerifyResponse: MessageTypeDefinition<_tokend_v1_BatchVerifyResponse, _tokend_v1_BatchVerifyResponse__Output>
      ChangeEvent: MessageTypeDefinition<_tokend_v1_ChangeEvent, _tokend_v1_ChangeEvent__Output>
      KeyChanged: MessageTypeDefinition<_tokend_v1_KeyChanged, _tokend_v1_KeyChanged__Output>
      RateLimit: MessageTypeDefinition<_tokend_v1_RateLimit, _tokend_v1_RateLimit__Output>
      Ready: MessageTypeDefinition<_tokend_v1_Ready, _tokend_v1_Ready__Output>
      Resource: MessageTypeDefinition<_tokend_v1_Resource, _tokend_v1_Resource__Output>
      Tokens: SubtypeConstructor<typeof grpc.Client, _tokend_v1_TokensClient> & { service: _tokend_v1_TokensDefinition }
      VerifyRequest: MessageTypeDefinition<_tokend_v1_VerifyRequest, _tokend_v1_VerifyRequest__Output>
      VerifyResponse: MessageTypeDefinition<_tokend_v1_VerifyResponse, _tokend_v1_VerifyResponse__Output>
      WatchChangesRequest: MessageTypeDefinition<_tokend_v1_WatchChangesRequest, _tokend_v1_WatchChangesRequest__Output>
    }
  }
}

