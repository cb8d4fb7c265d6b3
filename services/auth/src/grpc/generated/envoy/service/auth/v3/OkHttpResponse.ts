// Original file: ../../proto/envoy/service/auth/v3/external_auth.proto

import type { HeaderValueOption as _envoy_config_core_v3_HeaderValueOption, HeaderValueOption__Output as _envoy_config_core_v3_HeaderValueOption__Output } from '../../../../envoy/config/core/v3/HeaderValueOption';

export interface OkHttpResponse {
  'headers'?: (_envoy_config_core_v3_HeaderValueOption)[];
  'headersToRemove'?: (string)[];
  'responseHeadersToAdd'?: (_envoy_config_core_v3_HeaderValueOption)[];
}

export interface OkHttpResponse__Output {
  'headers': (_envoy_config_core_v3_HeaderValueOption__Output)[];
  'headersToRemove': (string)[];
  'responseHeadersToAdd': (_envoy_config_core_v3_HeaderValueOption__Output)[];
}
