/** Composition of the local executor: buildah, the base images, and the pipeline steps. */
import type { Config } from '../../config/schema.js';
import type { Reporter } from '../../domain/progress.js';
import { LocalBuilder, type PipelineSteps } from './build.js';

export function localSteps(_config: Config, _home: string): PipelineSteps {
  return {};
}

export function createLocalBuilder(config: Config, reporter: Reporter, home: string): LocalBuilder {
  return new LocalBuilder({ config, reporter, steps: localSteps(config, home) });
}
