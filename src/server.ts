/**
 * Composition root of the API server: config -> executor -> app -> listen. The executor
 * comes from config (`executor.kind`): local (state on disk) by default, argo (builds as
 * Workflows in `executor.buildNamespace`, through `executor.kubeconfig` or the default
 * kubeconfig) when configured.
 */
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Config } from './config/schema.js';
import { createApp } from './api/app.js';
import { TokenStore } from './api/tokens.js';
import type { ArchiveLimits } from './source/archive.js';
import { KubeConfig } from '@kubernetes/client-node';
import type { Executor } from './executors/executor.js';
import { ArgoBuildExecutor } from './executors/argo/build-executor.js';
import { LocalExecutor } from './executors/local/executor.js';
import { LocalBuilder } from './executors/local/build.js';
import { localSteps, republishService } from './executors/local/index.js';

export interface Running {
  server: Server;
  port: number;
  executor: Executor;
  close(): Promise<void>;
}

export function createExecutor(config: Config, home: string): Executor {
  if (config.executor.kind === 'argo') {
    const kubeConfig = new KubeConfig();
    if (config.executor.kubeconfig) kubeConfig.loadFromFile(config.executor.kubeconfig);
    else kubeConfig.loadFromDefault();
    return new ArgoBuildExecutor({ config, kubeConfig });
  }
  const steps = localSteps(config, home);
  return new LocalExecutor({
    config,
    builder: (reporter) => new LocalBuilder({ config, reporter, steps }),
    republish: (svc) => republishService(config, home, svc),
  });
}

export async function startServer(
  config: Config,
  home: string,
  opts: { port: number; host?: string; log?: (e: Record<string, unknown>) => void; archiveLimits?: Partial<ArchiveLimits> },
): Promise<Running> {
  const executor = createExecutor(config, home);
  await executor.start();
  const tokens = new TokenStore(join(config.stateDir, 'tokens.json'));
  const app = createApp({ config, executor, tokens, log: opts.log, archiveLimits: opts.archiveLimits });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(opts.port, opts.host ?? '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    server,
    port,
    executor,
    async close() {
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await executor.stop();
    },
  };
}
