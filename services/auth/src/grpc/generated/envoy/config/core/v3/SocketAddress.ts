// Original file: ../../proto/envoy/config/core/v3/address.proto


export interface SocketAddress {
  'address'?: (string);
  'portValue'?: (number);
}

export interface SocketAddress__Output {
  'address': (string);
  'portValue': (number);
}
