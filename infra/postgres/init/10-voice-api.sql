-- Each service owns its database: tokend's is created by the image (POSTGRES_DB), this
-- one is voice-api's. Runs only when the data volume is empty.
CREATE DATABASE voice_api;
