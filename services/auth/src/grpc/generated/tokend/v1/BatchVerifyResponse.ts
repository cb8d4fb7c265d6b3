// Original file: ../../proto/tokend/v1/tokens.proto

import type { VerifyResponse as _tokend_v1_VerifyResponse, VerifyResponse__Output as _tokend_v1_VerifyResponse__Output } from '../../tokend/v1/VerifyResponse';

export interface BatchVerifyResponse {
  'results'?: (_tokend_v1_VerifyResponse)[];
}

export interface BatchVerifyResponse__Output {
  'results': (_tokend_v1_VerifyResponse__Output)[];
}
