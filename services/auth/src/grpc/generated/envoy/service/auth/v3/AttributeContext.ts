// Original file: ../../proto/envoy/service/auth/v3/attribute_context.proto

import type { Address as _envoy_config_core_v3_Address, Address__Output as _envoy_config_core_v3_Address__Output } from '../../../../envoy/config/core/v3/Address';
import type { HeaderMap as _envoy_config_core_v3_HeaderMap, HeaderMap__Output as _envoy_config_core_v3_HeaderMap__Output } from '../../../../envoy/config/core/v3/HeaderMap';

export interface _envoy_service_auth_v3_AttributeContext_HttpRequest {
  'id'?: (string);
  'method'?: (string);
  'headers'?: ({[key: string]: string});
  'headerMap'?: (_envoy_config_core_v3_HeaderMap | null);
  'path'?: (string);
  'host'?: (string);
  'scheme'?: (string);
  'protocol'?: (string);
}

export interface _envoy_service_auth_v3_AttributeContext_HttpRequest__Output {
  'id': (string);
  'method': (string);
  'headers': ({[key: string]: string});
  'headerMap': (_envoy_config_core_v3_HeaderMap__Output | null);
  'path': (string);
  'host': (string);
  'scheme': (string);
  'protocol': (string);
}

export interface _envoy_service_auth_v3_AttributeContext_Peer {
  'address'?: (_envoy_config_core_v3_Address | null);
}

export interface _envoy_service_auth_v3_AttributeContext_Peer__Output {
  'address': (_envoy_config_core_v3_Address__Output | null);
}

export interface _envoy_service_auth_v3_AttributeContext_Request {
  'http'?: (_envoy_service_auth_v3_AttributeContext_HttpRequest | null);
}

export interface _envoy_service_auth_v3_AttributeContext_Request__Output {
  'http': (_envoy_service_auth_v3_AttributeContext_HttpRequest__Output | null);
}

export interface AttributeContext {
  'source'?: (_envoy_service_auth_v3_AttributeContext_Peer | null);
  'request'?: (_envoy_service_auth_v3_AttributeContext_Request | null);
  'contextExtensions'?: ({[key: string]: string});
}

export interface AttributeContext__Output {
  'source': (_envoy_service_auth_v3_AttributeContext_Peer__Output | null);
  'request': (_envoy_service_auth_v3_AttributeContext_Request__Output | null);
  'contextExtensions': ({[key: string]: string});
}
