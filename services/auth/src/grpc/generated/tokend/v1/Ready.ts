// Original file: ../../proto/tokend/v1/tokens.proto


export interface Ready {
  'scope'?: (string);
}

export interface Ready__Output {
  'scope': (string);
}
