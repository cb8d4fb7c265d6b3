// Original file: ../../proto/tokend/v1/tokens.proto

import type { VerifyRequest as _tokend_v1_VerifyRequest, VerifyRequest__Output as _tokend_v1_VerifyRequest__Output } from '../../tokend/v1/VerifyRequest';

export interface BatchVerifyRequest {
  'requests'?: (_tokend_v1_VerifyRequest)[];
}

export interface BatchVerifyRequest__Output {
  'requests': (_tokend_v1_VerifyRequest__Output)[];
}
