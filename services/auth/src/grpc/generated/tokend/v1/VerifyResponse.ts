// Original file: ../../proto/tokend/v1/tokens.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { Resource as _tokend_v1_Resource, Resource__Output as _tokend_v1_Resource__Output } from '../../tokend/v1/Resource';
import type { Long } from '@grpc/proto-loader';

export interface VerifyResponse {
  'valid'?: (boolean);
  'reason'?: (string);
  'kind'?: (string);
  'tokenId'?: (string);
  'accountId'?: (string);
  'environment'?: (string);
  'role'?: (string);
  'scopes'?: (string)[];
  'name'?: (string);
  'expiresAt'?: (_google_protobuf_Timestamp | null);
  'missingScopes'?: (string)[];
  'retryAfterMs'?: (number | string | Long);
  'userId'?: (string);
  'resource'?: (_tokend_v1_Resource | null);
  'metaJson'?: (string);
  'remaining'?: (number | string | Long);
  '_remaining'?: "remaining";
}

export interface VerifyResponse__Output {
  'valid': (boolean);
  'reason': (string);
  'kind': (string);
  'tokenId': (string);
  'accountId': (string);
  'environment': (string);
  'role': (string);
  'scopes': (string)[];
  'name': (string);
  'expiresAt': (_google_protobuf_Timestamp__Output | null);
  'missingScopes': (string)[];
  'retryAfterMs': (number);
  'userId': (string);
  'resource': (_tokend_v1_Resource__Output | null);
  'metaJson': (string);
  'remaining'?: (number);
  '_remaining'?: "remaining";
}
