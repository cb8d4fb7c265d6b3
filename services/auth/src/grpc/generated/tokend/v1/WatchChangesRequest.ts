// Original file: ../../proto/tokend/v1/tokens.proto


export interface WatchChangesRequest {
}

export interface WatchChangesRequest__Output {
}
