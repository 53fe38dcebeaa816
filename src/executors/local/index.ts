/** Composition of the local executor: buildah, the base images, and the pipeline steps. */
import { join } from 'node:path';
import type { Config } from '../../config/schema.js';
import type { Reporter } from '../../domain/progress.js';
import { publishServiceChart } from '../../chart/publish.js';
import { chartVersionFor, renderServiceValues } from '../../chart/values.js';
import { writeFile } from 'node:fs/promises';
import { computeOverlay, pushOverlay } from '../../overlay/index.js';
import { registryClientFor, type RegistryClient } from '../../registry/client.js';
import { resolveScanSettings } from '../../scan/settings.js';
import { scanStep } from '../../scan/step.js';
import { scanSkipReason } from '../../scan/availability.js';
import { LocalBuilder, type PipelineSteps } from './build.js';
import { BaseImages } from './base-images.js';
import { Buildah } from './buildah.js';
import { silentReporter } from '../../domain/progress.js';
import type { ServiceRecord } from '../executor.js';

/** The base env each kind of base image records in a sha256 manifest. */
export const ENV_MANIFESTS: Record<string, Array<{ root: string; path: string }>> = {
  python: [{ root: '/home/user/the_venv', path: '/home/user/the_venv.sha256' }],
  node: [{ root: '/home/user/node_modules', path: '/home/user/node_modules.sha256' }],
  binary: [],
};

export function registryClient(config: Config): RegistryClient {
  return registryClientFor(config.registry);
}

function splitRef(ref: string): { repository: string; digest: string } {
  const at = ref.indexOf('@');
  return { repository: ref.slice(0, at), digest: ref.slice(at + 1) };
}

export function localSteps(config: Config, home: string): PipelineSteps {
  const tools = new BaseImages(config, Buildah.forConfig(config));
  const scanSettings = resolveScanSettings(config.scan, { registryHost: config.registry.host, stateDir: config.stateDir });
  return {
    ...(scanSettings.enabled !== false
      ? {
          async scan({ base, image, log, signal }: Parameters<NonNullable<PipelineSteps['scan']>>[0]) {
            const why = await scanSkipReason(scanSettings, registryClient(config), config.registry.host);
            if (why) return { skipped: why };
            return scanStep({
              client: registryClient(config),
              registry: config.registry,
              settings: scanSettings,
              image,
              base: base.ref,
              log,
              ...(signal ? { signal } : {}),
            });
          },
        }
      : {}),
    async overlay({ base, image, outFile }) {
      const client = registryClient(config);
      const res = await computeOverlay({ client, base: base.ref, image, envManifests: ENV_MANIFESTS[base.kind] ?? [] });
      await writeFile(outFile, res.zip);
      const artifact = await pushOverlay(client, res.image.repo, res.image.digest, res.zip);
      return {
        path: outFile,
        digest: res.digest,
        bytes: res.bytes,
        entries: res.entries.length,
        ref: `${config.registry.host}/${res.image.repo}@${artifact}`,
      };
    },
    async publish({ result, port, route, env, workDir }) {
      // The overlay is baked in too, with the fetcher image, so `--set mode=overlay` works.
      const fetcher = result.overlay?.ref ? await tools.ensure('fetcher', silentReporter, []) : undefined;
      const values = renderServiceValues({
        mode: 'image',
        image: splitRef(result.image),
        base: splitRef(result.base),
        overlay:
          result.overlay?.ref && fetcher
            ? { ...splitRef(result.overlay.ref), fetcherImage: fetcher.ref, plainHttp: config.registry.plainHttp }
            : undefined,
        route: { kind: 'none', path: route },
        port,
        env,
        // The base image of overlay mode has no entrypoint of the service.
        command: result.entrypoint,
        labels: { 'svcbuild.io/tenant': result.tenant, 'svcbuild.io/build-id': result.id, 'svcbuild.io/kind': result.kind },
      });
      const published = await publishServiceChart({
        chartSrcDir: join(home, 'charts', 'platform-service'),
        values,
        name: result.service,
        version: chartVersionFor(result.id),
        appVersion: result.id,
        registry: config.registry,
        workDir,
      });
      return { ref: published.ref, version: published.version, digest: published.digest };
    },
  };
}

/** Republishes a service's chart with its changed configuration (no rebuild). */
export async function republishService(config: Config, home: string, svc: ServiceRecord): Promise<ServiceRecord['chart']> {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const work = await mkdtemp(join(tmpdir(), 'svcbuild-republish-'));
  try {
    const values = renderServiceValues({
      mode: 'image',
      image: splitRef(svc.image),
      base: splitRef(svc.base),
      route: { kind: 'none', path: svc.config.route },
      port: svc.config.port,
      env: svc.config.env,
      replicas: svc.config.replicas,
      resources: { requests: { cpu: svc.config.cpu, memory: svc.config.memory }, limits: { memory: svc.config.memory } },
      labels: { 'svcbuild.io/tenant': svc.tenant, 'svcbuild.io/build-id': svc.build },
    });
    const published = await publishServiceChart({
      chartSrcDir: join(home, 'charts', 'platform-service'),
      values,
      name: svc.service,
      version: `${chartVersionFor(svc.build)}.r${svc.revision}`,
      appVersion: svc.build,
      registry: config.registry,
      workDir: work,
    });
    return { ref: published.ref, version: published.version, digest: published.digest };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export function createLocalBuilder(config: Config, reporter: Reporter, home: string): LocalBuilder {
  return new LocalBuilder({ config, reporter, steps: localSteps(config, home) });
}
