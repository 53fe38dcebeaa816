/**
 * Pure: a build plan and a base image in, a Dockerfile out. User-controlled strings only
 * ever appear JSON-encoded inside JSON-form instructions, and are checked for line breaks
 * first, so none can become an instruction.
 */
import { InternalError } from '../errors.js';
import type { BaseInfo, BuildPlan } from './provider.js';

const SAFE_FILE = /^[A-Za-z0-9._-]+$/;

export interface DockerfileOptions {
  port: number;
}

export function renderDockerfile(plan: BuildPlan, base: BaseInfo, opts: DockerfileOptions): string {
  if (!/^[a-z0-9.:/_-]+@sha256:[a-f0-9]{64}$/.test(base.ref)) {
    throw new InternalError(`base image must be referenced by digest, got ${base.ref}`);
  }
  for (const f of plan.dependencyFiles) {
    if (!SAFE_FILE.test(f)) throw new InternalError(`dependency file name not allowed: ${f}`);
  }
  for (const a of plan.entrypoint) {
    if (/[\r\n\0]/.test(a)) throw new InternalError('entrypoint arguments must not contain line breaks');
  }
  const lines = [
    '# Written by svcbuild: the base image is never modified; everything this build adds',
    '# lives under /project, owned by user.',
    `FROM ${base.ref}`,
    'USER user',
    'WORKDIR /project/app',
    // Metadata before the copies: these steps stay cached, so a source-only change
    // rebuilds only the last COPY.
    `ENV PORT=${opts.port} CONTEXT_ROOT=/`,
    `EXPOSE ${opts.port}`,
    `ENTRYPOINT ${JSON.stringify(plan.entrypoint)}`,
  ];
  if (plan.dependencyFiles.length > 0) {
    lines.push(
      '# The dependency manifest first: this layer is reused while it is unchanged.',
      `COPY --chown=user:user ${JSON.stringify([...plan.dependencyFiles, '/project/app/'])}`,
    );
  }
  if (plan.installCommand) {
    if (/[\r\n]/.test(plan.installCommand)) throw new InternalError('install command must be one line');
    lines.push('# Install only what the base lacks, then move it under /project and verify the base.', `RUN ${plan.installCommand}`);
  }
  lines.push('COPY --chown=user:user . /project/app/', '');
  return lines.join('\n');
}
