/** Composition of the local executor: buildah, the base images, and the pipeline steps. */
import { join } from 'node:path';
import type { Config } from '../../config/schema.js';
import type { Reporter } from '../../domain/progress.js';
import { publishServiceChart } from '../../chart/publish.js';
import { chartVersionFor, renderServiceValues } from '../../chart/values.js';
import { LocalBuilder, type PipelineSteps } from './build.js';

function splitRef(ref: string): { repository: string; digest: string } {
  const at = ref.indexOf('@');
  return { repository: ref.slice(0, at), digest: ref.slice(at + 1) };
}

export function localSteps(config: Config, home: string): PipelineSteps {
  return {
    async publish({ result, port, route, env, workDir }) {
      const values = renderServiceValues({
        mode: 'image',
        image: splitRef(result.image),
        base: splitRef(result.base),
        route: { kind: 'none', path: route },
        port,
        env,
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

export function createLocalBuilder(config: Config, reporter: Reporter, home: string): LocalBuilder {
  return new LocalBuilder({ config, reporter, steps: localSteps(config, home) });
}
