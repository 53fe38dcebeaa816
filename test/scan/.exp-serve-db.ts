// temporary experiment script (deleted after use)
import { startRegistry } from '../helpers/registry.js';
import { serveFixtureDb } from './fixture-db.js';
const reg = await startRegistry();
const repo = await serveFixtureDb(reg.host, '/tmp/scanwork/exp');
console.log(repo);
process.on('SIGTERM', async () => { await reg.stop(); process.exit(0); });
setInterval(() => {}, 1 << 30);
