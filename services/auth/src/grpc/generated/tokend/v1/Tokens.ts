// Original file: ../../proto/tokend/v1/tokens.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { BatchVerifyRequest as _tokend_v1_BatchVerifyRequest, BatchVerifyRequest__Output as _tokend_v1_BatchVerifyRequest__Output } from '../../tokend/v1/BatchVerifyRequest';
import type { BatchVerifyResponse as _tokend_v1_BatchVerifyResponse, BatchVerifyResponse__Output as _tokend_v1_BatchVerifyResponse__Output } from '../../tokend/v1/BatchVerifyResponse';
import type { ChangeEvent as _tokend_v1_ChangeEvent, ChangeEvent__Output as _tokend_v1_ChangeEvent__Output } from '../../tokend/v1/ChangeEvent';
import type { VerifyRequest as _tokend_v1_VerifyRequest, VerifyRequest__Output as _tokend_v1_VerifyRequest__Output } from '../../tokend/v1/VerifyRequest';
import type { VerifyResponse as _tokend_v1_VerifyResponse, VerifyResponse__Output as _tokend_v1_VerifyResponse__Output } from '../../tokend/v1/VerifyResponse';
import type { WatchChangesRequest as _tokend_v1_WatchChangesRequest, WatchChangesRequest__Output as _tokend_v1_WatchChangesRequest__Output } from '../../tokend/v1/WatchChangesRequest';

export interface TokensClient extends grpc.Client {
  BatchVerify(argument: _tokend_v1_BatchVerifyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tokend_v1_BatchVerifyResponse__Output>): grpc.ClientUnaryCall;
  BatchVerify(argument: _tokend_v1_BatchVerifyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tokend_v1_BatchVerifyResponse__Output>): grpc.ClientUnaryCall;
  BatchVerify(argument: _tokend_v1_BatchVerifyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tokend_v1_BatchVerifyResponse__Output>): grpc.ClientUnaryCall;
  BatchVerify(argument: _tokend_v1_BatchVerifyRequest, callback: grpc.requestCallback<_tokend_v1_BatchVerifyResponse__Output>): grpc.ClientUnaryCall;
  batchVerify(argument: _tokend_v1_BatchVerifyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tokend_v1_BatchVerifyResponse__Output>): grpc.ClientUnaryCall;
  batchVerify(argument: _tokend_v1_BatchVerifyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tokend_v1_BatchVerifyResponse__Output>): grpc.ClientUnaryCall;
  batchVerify(argument: _tokend_v1_BatchVerifyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tokend_v1_BatchVerifyResponse__Output>): grpc.ClientUnaryCall;
  batchVerify(argument: _tokend_v1_BatchVerifyRequest, callback: grpc.requestCallback<_tokend_v1_BatchVerifyResponse__Output>): grpc.ClientUnaryCall;
  
  Verify(argument: _tokend_v1_VerifyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tokend_v1_VerifyResponse__Output>): grpc.ClientUnaryCall;
  Verify(argument: _tokend_v1_VerifyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tokend_v1_VerifyResponse__Output>): grpc.ClientUnaryCall;
  Verify(argument: _tokend_v1_VerifyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tokend_v1_VerifyResponse__Output>): grpc.ClientUnaryCall;
  Verify(argument: _tokend_v1_VerifyRequest, callback: grpc.requestCallback<_tokend_v1_VerifyResponse__Output>): grpc.ClientUnaryCall;
  verify(argument: _tokend_v1_VerifyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tokend_v1_VerifyResponse__Output>): grpc.ClientUnaryCall;
  verify(argument: _tokend_v1_VerifyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tokend_v1_VerifyResponse__Output>): grpc.ClientUnaryCall;
  verify(argument: _tokend_v1_VerifyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tokend_v1_VerifyResponse__Output>): grpc.ClientUnaryCall;
  verify(argument: _tokend_v1_VerifyRequest, callback: grpc.requestCallback<_tokend_v1_VerifyResponse__Output>): grpc.ClientUnaryCall;
  
  WatchChanges(argument: _tokend_v1_WatchChangesRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_tokend_v1_ChangeEvent__Output>;
  WatchChanges(argument: _tokend_v1_WatchChangesRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_tokend_v1_ChangeEvent__Output>;
  watchChanges(argument: _tokend_v1_WatchChangesRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_tokend_v1_ChangeEvent__Output>;
  watchChanges(argument: _tokend_v1_WatchChangesRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_tokend_v1_ChangeEvent__Output>;
  
}

export interface TokensHandlers extends grpc.UntypedServiceImplementation {
  BatchVerify: grpc.handleUnaryCall<_tokend_v1_BatchVerifyRequest__Output, _tokend_v1_BatchVerifyResponse>;
  
  Verify: grpc.handleUnaryCall<_tokend_v1_VerifyRequest__Output, _tokend_v1_VerifyResponse>;
  
  WatchChanges: grpc.handleServerStreamingCall<_tokend_v1_WatchChangesRequest__Output, _tokend_v1_ChangeEvent>;
  
}

export interface TokensDefinition extends grpc.ServiceDefinition {
  BatchVerify: MethodDefinition<_tokend_v1_BatchVerifyRequest, _tokend_v1_BatchVerifyResponse, _tokend_v1_BatchVerifyRequest__Output, _tokend_v1_BatchVerifyResponse__Output>
  Verify: MethodDefinition<_tokend_v1_VerifyRequest, _tokend_v1_VerifyResponse, _tokend_v1_VerifyRequest__Output, _tokend_v1_VerifyResponse__Output>
  WatchChanges: MethodDefinition<_tokend_v1_WatchChangesRequest, _tokend_v1_ChangeEvent, _tokend_v1_WatchChangesRequest__Output, _tokend_v1_ChangeEvent__Output>
}
