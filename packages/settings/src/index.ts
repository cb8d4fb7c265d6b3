export { ConfigError, closest, duration, integer, optionalString, type Problem, parseEnvironment } from './settings.ts'
