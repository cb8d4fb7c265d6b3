// Original file: ../../proto/tokend/v1/tokens.proto


export interface KeyChanged {
  'digest'?: (string);
  'accountId'?: (string);
  'tokenId'?: (string);
}

export interface KeyChanged__Output {
  'digest': (string);
  'accountId': (string);
  'tokenId': (string);
}
