/** `svcbuild serve [--port N] [--host H]`: the HTTP API with the configured executor. */
import { parseArgs } from 'node:util';
import type { CliContext } from '../context.js';
import { startServer } from '../../server.js';

const HELP = `usage: svcbuild serve [--port N] [--host ADDR]

Starts the HTTP API (default 127.0.0.1:8080). Builds run with the local executor, their state
under the state directory; a restarted server resumes unfinished builds. Create a token first:
svcbuild token create --tenant T. OpenAPI document: GET /openapi.json.
`;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    ctx.stdout.write(HELP);
    return 0;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    ctx.stderr.write(`svcbuild serve: --port must be 0-65535, not ${values.port}\n`);
    return 2;
  }
  const config = await ctx.config();
  const running = await startServer(config, ctx.home, { port, host: values.host });
  process.stderr.write(
    JSON.stringify({
      time: new Date().toISOString(),
      level: 'info',
      msg: 'listening',
      url: `http://${values.host}:${running.port}`,
      executor: running.executor.name,
    }) + '\n',
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await running.close();
  return 0;
}
