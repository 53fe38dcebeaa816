/**
 * The local executor's pipeline: source -> base -> build -> overlay -> publish, on one
 * machine with buildah and a registry. Every input is validated before anything is built
 * or pushed; a failure after the image push removes the unpromoted image.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Config, Kind } from '../../config/schema.js';
import { InputError, type Issue } from '../../errors.js';
import { checkServiceName, qualifiedName, suggestName } from '../../domain/names.js';
import { timedStep, type Reporter, type StepRecord } from '../../domain/progress.js';
import { PROJECT_CONFIG_FILES, ProjectConfigSchema, type ProjectConfig } from '../../domain/project-config.js';
import { renderDockerfile } from '../../providers/dockerfile.js';
import { selectProvider } from '../../providers/index.js';
import { stageProject, type Project } from '../../providers/project.js';
import type { BuildPlan } from '../../providers/provider.js';
import { ScanGateError, describeSummary, type ScanSummary } from '../../scan/step.js';
import { BaseImages, caVolumes, type BaseImage } from './base-images.js';
import { registryClientFor } from '../../registry/client.js';
import { parseImageRef } from '../../registry/ref.js';
import { deleteReference, promote } from '../../steps/registry.js';

import { Buildah } from './buildah.js';

export interface BuildRequest {
  projectDir: string;
  name?: string;
  kind?: string;
  base?: string;
  tenant?: string;
  /** A build id chosen by the caller (the API's executor); default: a new one. */
  id?: string;
  /** Settings from the API that override the project's svcbuild.yaml. */
  overrides?: Partial<Pick<ProjectConfig, 'port' | 'route' | 'env'>>;
  signal?: AbortSignal;
}

export interface OverlayInfo {
  path: string;
  digest: string;
  bytes: number;
  /** The overlay artifact in the registry, when pushed. */
  ref?: string;
  entries?: number;
}

export interface ChartInfo {
  ref: string;
  version: string;
  digest?: string;
}

export interface BuildResult {
  id: string;
  tenant: string;
  name: string;
  service: string;
  kind: Kind;
  image: string;
  base: string;
  overlay?: OverlayInfo;
  /** The scan gate's decision and counts (also set when the gate failed). */
  scan?: ScanSummary;
  chart?: ChartInfo;
  entrypoint: string[];
  notes: string[];
  steps: StepRecord[];
}

/** Later pipeline steps, injected so the build does not depend on how they are done. */
export interface PipelineSteps {
  /** Resolves `{ skipped }` with the reason when no scanner is set up (config scan.enabled: auto). */
  scan?(input: {
    base: BaseImage;
    image: string;
    log: (l: string) => void;
    signal?: AbortSignal;
  }): Promise<ScanSummary | { skipped: string }>;
  overlay?(input: {
    base: BaseImage;
    image: string;
    imageRepository: string;
    imageDigest: string;
    outFile: string;
    log: (l: string) => void;
  }): Promise<OverlayInfo>;
  publish?(input: { result: BuildResult; port: number; route: string; env: Record<string, string>; workDir: string }): Promise<ChartInfo>;
}

export interface LocalBuildDeps {
  config: Config;
  reporter: Reporter;
  buildah?: Buildah;
  baseImages?: BaseImages;
  steps?: PipelineSteps;
}

/** A sortable, unique build id: UTC time plus randomness. */
export function newBuildId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `${t}-${randomBytes(3).toString('hex')}`;
}

async function readProjectConfig(project: Project): Promise<ProjectConfig> {
  const file = PROJECT_CONFIG_FILES.find((f) => project.has(f));
  if (!file) return {};
  let raw: unknown;
  try {
    raw = parseYaml(await project.readText(file));
  } catch (e) {
    throw new InputError(`${file} is not valid YAML`, [{ path: file, message: (e as Error).message.split('\n')[0]! }]);
  }
  const res = ProjectConfigSchema.safeParse(raw ?? {});
  if (!res.success) {
    throw new InputError(
      `${file} is invalid`,
      res.error.issues.map((i) => ({ path: [file, ...i.path].join('.'), message: i.message })),
    );
  }
  return res.data;
}

export class LocalBuilder {
  private readonly config: Config;
  private readonly buildah: Buildah;
  private readonly baseImages: BaseImages;

  constructor(private readonly deps: LocalBuildDeps) {
    this.config = deps.config;
    this.buildah = deps.buildah ?? Buildah.forConfig(deps.config);
    this.baseImages = deps.baseImages ?? new BaseImages(deps.config, this.buildah);
  }

  get bases(): BaseImages {
    return this.baseImages;
  }

  async build(req: BuildRequest): Promise<BuildResult> {
    const { reporter } = this.deps;
    const cfg = this.config;
    const steps: StepRecord[] = [];
    const id = req.id ?? newBuildId();
    const tenant = req.tenant ?? cfg.defaults.tenant;
    const work = await mkdtemp(join(tmpdir(), 'svcbuild-build-'));
    try {
      // 0. source: stage, detect, validate everything before building anything.
      const src = await timedStep(
        steps,
        reporter,
        'source',
        async () => {
          const project = await stageProject(req.projectDir, join(work, 'context'));
          const pcfg = { ...(await readProjectConfig(project)), ...stripUndefined(req.overrides ?? {}) };
          const provider = selectProvider(project, req.kind ?? pcfg.kind, cfg.enabledKinds, req.kind ? 'kind' : 'svcbuild.yaml.kind');
          const baseName = req.base ?? pcfg.base ?? cfg.defaults.base[provider.kind];
          const spec = this.baseImages.spec(baseName);
          const issues: Issue[] = [];
          if (spec.kind !== provider.kind) {
            issues.push({
              path: 'base',
              message: `base image "${baseName}" is for ${spec.kind} projects, not ${provider.kind}; choose one of: ${Object.entries(
                cfg.baseImages,
              )
                .filter(([, s]) => s.kind === provider.kind)
                .map(([n]) => n)
                .join(', ')}`,
            });
          }
          const plan = await provider.plan(
            project,
            { name: baseName, kind: spec.kind, ref: '', languageVersion: spec.languageVersion },
            pcfg,
          );
          const name = req.name ?? pcfg.name ?? suggestName(plan.suggestedName ?? '') ?? '';
          issues.push(
            ...checkServiceName(
              name || suggestName(req.projectDir.split('/').filter(Boolean).pop() ?? ''),
              tenant,
              req.name ? 'name' : 'name (from the project; set it with --name)',
            ),
          );
          if (issues.length) throw new InputError('the build request is invalid', issues);
          return { project, pcfg, plan, baseName, name: name || suggestName(req.projectDir.split('/').filter(Boolean).pop() ?? '') };
        },
        (s) => `${s.plan.kind} project "${s.name}" on ${s.baseName}; ${s.plan.notes.join('; ')}`,
      );

      // 1. base image, by digest (built only when its inputs changed).
      const base = await this.baseImages.ensure(src.baseName, reporter, steps);

      // 2. build: buildah, pushed unpromoted as :build-<id>.
      const service = qualifiedName(tenant, src.name);
      const repository = `${cfg.registry.host}/${cfg.registry.namespace}/${service}`;
      const port = src.pcfg.port ?? cfg.defaults.port;
      const imageDigest = await timedStep(
        steps,
        reporter,
        'build',
        async () => {
          const dockerfile = join(work, 'Dockerfile');
          await writeFile(
            dockerfile,
            renderDockerfile(
              src.plan,
              { name: base.name, kind: base.kind, ref: base.ref, languageVersion: base.languageVersion },
              { port },
            ),
          );
          await this.buildah.bud({
            contextDir: src.project.root,
            dockerfile,
            tag: `${repository}:build-${id}`,
            volumes: caVolumes(cfg),
            onLine: (l) => reporter.log('build', l),
            step: 'build',
            signal: req.signal,
          });
          return this.buildah.push(`${repository}:build-${id}`, `${repository}:build-${id}`, req.signal);
        },
        (d) => `${repository}@${d}`,
      );
      const result: BuildResult = {
        id,
        tenant,
        name: src.name,
        service,
        kind: src.plan.kind,
        image: `${repository}@${imageDigest}`,
        base: base.ref,
        entrypoint: src.plan.entrypoint,
        notes: src.plan.notes,
        steps,
      };
      const outDir = join(cfg.stateDir, 'builds', id);
      await mkdir(outDir, { recursive: true });
      const client = registryClientFor(cfg.registry);
      const built = { ...parseImageRef(`${repository}:build-${id}`), digest: imageDigest };
      try {
        // 2+3. scan and overlay, in parallel: both read the pushed image from the registry.
        const scan = this.deps.steps?.scan;
        const scanning = scan
          ? timedStep(
              steps,
              reporter,
              'scan',
              () => scan({ base, image: result.image, log: (l) => reporter.log('scan', l), signal: req.signal }),
              (s) => ('skipped' in s ? s.skipped : describeSummary(s)),
              (s) => ('skipped' in s ? 'skipped' : 'succeeded'),
            ).then(
              (s) => {
                if (!('skipped' in s)) result.scan = s;
              },
              (e: unknown) => {
                if (e instanceof ScanGateError) result.scan = e.summary;
                throw e;
              },
            )
          : Promise.resolve();
        const overlay = this.deps.steps?.overlay;
        const overlaying = overlay
          ? timedStep(
              steps,
              reporter,
              'overlay',
              () =>
                overlay({
                  base,
                  image: result.image,
                  imageRepository: repository,
                  imageDigest,
                  outFile: join(outDir, 'overlay.zip'),
                  log: (l) => reporter.log('overlay', l),
                }),
              (o) => `${o.entries ?? '?'} entries, ${o.bytes} bytes, ${o.digest.slice(0, 19)}`,
            ).then((o) => {
              result.overlay = o;
            })
          : Promise.resolve();
        // Wait for both before failing, so neither runs on after the build has ended.
        const settled = await Promise.allSettled([scanning, overlaying]);
        for (const s of settled) {
          if (s.status === 'rejected') {
            // The partial result (image, scan summary) travels with the error for --json and the API.
            if (s.reason && typeof s.reason === 'object') (s.reason as { result?: BuildResult }).result = result;
            throw s.reason;
          }
        }

        // 4. publish: the chart of this build.
        if (this.deps.steps?.publish) {
          const publish = this.deps.steps.publish;
          result.chart = await timedStep(
            steps,
            reporter,
            'publish',
            () => publish({ result, port, route: src.pcfg.route ?? `/${src.name}`, env: src.pcfg.env ?? {}, workDir: join(work, 'chart') }),
            (c) => `${c.ref}:${c.version}`,
          );
        }
        // Promote: the service's `latest` now names this build.
        await promote(client, built, 'latest');
      } catch (err) {
        // Exit handler: an unpromoted image of a failed build does not stay in the registry.
        await deleteReference(client, { ...built, digest: undefined, tag: `build-${id}` }).catch(() => undefined);
        throw err;
      }
      await writeFile(join(outDir, 'build.json'), JSON.stringify(result, null, 2));
      return result;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Reads a finished build's record from the state directory. */
export async function readBuild(config: Config, id: string): Promise<BuildResult> {
  return JSON.parse(await readFile(join(config.stateDir, 'builds', id, 'build.json'), 'utf8')) as BuildResult;
}

export type { BuildPlan };
