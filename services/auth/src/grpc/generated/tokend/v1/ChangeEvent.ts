// Original file: ../../proto/tokend/v1/tokens.proto

import type { Ready as _tokend_v1_Ready, Ready__Output as _tokend_v1_Ready__Output } from '../../tokend/v1/Ready';
import type { KeyChanged as _tokend_v1_KeyChanged, KeyChanged__Output as _tokend_v1_KeyChanged__Output } from '../../tokend/v1/KeyChanged';
import type { AccountChanged as _tokend_v1_AccountChanged, AccountChanged__Output as _tokend_v1_AccountChanged__Output } from '../../tokend/v1/AccountChanged';

export interface ChangeEvent {
  'ready'?: (_tokend_v1_Ready | null);
  'key'?: (_tokend_v1_KeyChanged | null);
  'account'?: (_tokend_v1_AccountChanged | null);
  'event'?: "ready"|"key"|"account";
}

export interface ChangeEvent__Output {
  'ready'?: (_tokend_v1_Ready__Output | null);
  'key'?: (_tokend_v1_KeyChanged__Output | null);
  'account'?: (_tokend_v1_AccountChanged__Output | null);
  'event'?: "ready"|"key"|"account";
}
