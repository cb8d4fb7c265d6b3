export { buildProgram, run } from './program.ts'
