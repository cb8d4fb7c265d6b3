// Original file: ../../proto/tokend/v1/tokens.proto

import type { RateLimit as _tokend_v1_RateLimit, RateLimit__Output as _tokend_v1_RateLimit__Output } from '../../tokend/v1/RateLimit';
import type { Long } from '@grpc/proto-loader';

export interface VerifyRequest {
  'token'?: (string);
  'scopes'?: (string)[];
  'environment'?: (string);
  'ratelimit'?: (_tokend_v1_RateLimit | null);
  'role'?: (string);
  'clientIp'?: (string);
  'cost'?: (number | string | Long);
  'audience'?: (string);
  '_cost'?: "cost";
}

export interface VerifyRequest__Output {
  'token': (string);
  'scopes': (string)[];
  'environment': (string);
  'ratelimit': (_tokend_v1_RateLimit__Output | null);
  'role': (string);
  'clientIp': (string);
  'cost'?: (number);
  'audience': (string);
  '_cost'?: "cost";
}
