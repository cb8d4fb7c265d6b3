// Original file: ../../proto/tokend/v1/tokens.proto


export interface AccountChanged {
  'accountId'?: (string);
}

export interface AccountChanged__Output {
  'accountId': (string);
}
