/**
 * `svcbuild rebase` on one machine: the service's last build is moved onto a new base image
 * without installing anything, then its overlay is verified against the new base and its
 * chart published, like a build.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../config/schema.js';
import { qualifiedName } from '../../domain/names.js';
import { timedStep, type Reporter, type StepRecord } from '../../domain/progress.js';
import { NotFoundError } from '../../errors.js';
import { parseImageRef } from '../../registry/ref.js';
import { rebaseImage } from '../../rebase/index.js';
import { BaseImages, type BaseImage } from './base-images.js';
import { newBuildId, type BuildResult, type PipelineSteps } from './build.js';
import type { Buildah } from './buildah.js';
import { registryClient } from './index.js';

export interface RebaseRequest {
  service: string;
  /** A catalog name (built if needed) or an image reference by digest or tag. */
  base: string;
  tenant?: string;
}

/** The newest local build of a service, by its short or qualified name. */
export async function latestBuild(config: Config, tenant: string, service: string): Promise<BuildResult> {
  const dir = join(config.stateDir, 'builds');
  let ids: string[] = [];
  try {
    ids = (await readdir(dir)).sort().reverse();
  } catch {
    ids = [];
  }
  const full = service.startsWith(`${tenant}-`) ? service : qualifiedName(tenant, service);
  for (const id of ids) {
    try {
      const b = JSON.parse(await readFile(join(dir, id, 'build.json'), 'utf8')) as BuildResult;
      if (b.service === full && b.tenant === tenant) return b;
    } catch {
      // not a finished build
    }
  }
  throw new NotFoundError(`no build of service ${full} in ${dir}; build it first with \`svcbuild build\``);
}

export async function rebaseService(
  config: Config,
  deps: { buildah: Buildah; steps: PipelineSteps; reporter: Reporter },
  req: RebaseRequest,
): Promise<BuildResult & { rebasedFrom: string }> {
  const tenant = req.tenant ?? config.defaults.tenant;
  const prev = await latestBuild(config, tenant, req.service);
  const steps: StepRecord[] = [];
  const id = newBuildId();
  const client = registryClient(config);
  let newBase: BaseImage;
  if (req.base.includes('/')) {
    const r = parseImageRef(req.base, config.registry.host);
    const img = await client.getImage(r.repo, r.digest ?? r.tag ?? 'latest');
    newBase = {
      name: req.base,
      kind: prev.kind,
      repository: `${r.host}/${r.repo}`,
      tag: r.tag ?? '',
      digest: img.manifest.digest,
      ref: `${r.host}/${r.repo}@${img.manifest.digest}`,
    };
  } else {
    newBase = await new BaseImages(config, deps.buildah).ensure(req.base, deps.reporter, steps);
  }
  const repository = prev.image.slice(0, prev.image.indexOf('@'));
  const rebased = await timedStep(
    steps,
    deps.reporter,
    'rebase',
    () => rebaseImage(client, { image: prev.image, oldBase: prev.base, newBase: newBase.ref, tag: `rebase-${id}` }),
    (r) => `${r.reusedLayers} project layer(s) moved onto ${newBase.ref}`,
  );
  const result: BuildResult & { rebasedFrom: string } = {
    ...prev,
    id,
    image: rebased.image,
    base: rebased.base,
    steps,
    rebasedFrom: prev.id,
    overlay: undefined,
    chart: undefined,
  };
  const outDir = join(config.stateDir, 'builds', id);
  await mkdir(outDir, { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'svcbuild-rebase-'));
  try {
    if (deps.steps.overlay) {
      const overlay = deps.steps.overlay;
      result.overlay = await timedStep(steps, deps.reporter, 'overlay', () =>
        overlay({
          base: newBase,
          image: rebased.image,
          imageRepository: repository,
          imageDigest: rebased.digest,
          outFile: join(outDir, 'overlay.zip'),
          log: (l) => deps.reporter.log('overlay', l),
        }),
      );
    }
    if (deps.steps.publish) {
      const publish = deps.steps.publish;
      result.chart = await timedStep(steps, deps.reporter, 'publish', () =>
        publish({ result, port: 8080, route: `/${prev.name}`, env: {}, workDir: join(work, 'chart') }),
      );
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  await writeFile(join(outDir, 'build.json'), JSON.stringify(result, null, 2));
  return result;
}
