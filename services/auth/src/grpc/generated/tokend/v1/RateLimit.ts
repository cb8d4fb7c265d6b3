// Original file: ../../proto/tokend/v1/tokens.proto

import type { Long } from '@grpc/proto-loader';

export interface RateLimit {
  'name'?: (string);
  'limit'?: (number | string | Long);
  'windowMs'?: (number | string | Long);
}

export interface RateLimit__Output {
  'name': (string);
  'limit': (number);
  'windowMs': (number);
}
