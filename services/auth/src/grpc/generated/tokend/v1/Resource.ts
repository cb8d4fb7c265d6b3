// Original file: ../../proto/tokend/v1/tokens.proto


export interface Resource {
  'type'?: (string);
  'id'?: (string);
}

export interface Resource__Output {
  'type': (string);
  'id': (string);
}
