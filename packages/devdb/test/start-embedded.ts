// Test helper: starts the embedded Postgres of argv[2] on port argv[3], prints its URL,
// and stops it on SIGTERM (a SIGKILL leaves it orphaned, as a killed service would).
import { startEmbeddedPostgres } from '../src/index.ts'

const [dataDir = '', port = ''] = process.argv.slice(2)
const silent = { info() {}, warn() {} }
const database = await startEmbeddedPostgres({ dataDir, port: Number(port), logger: silent })
process.stdout.write(`${database.url}\n`)
process.on('SIGTERM', () => void database.stop().then(() => process.exit(0)))
setInterval(() => {}, 60_000)
