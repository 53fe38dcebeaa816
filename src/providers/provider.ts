/**
 * The provider contract: one provider per project kind owns detection, validation, the
 * install step, the entrypoint and the runtime environment (seeds/001).
 */
import type { Kind } from '../config/schema.js';
import type { ProjectConfig } from '../domain/project-config.js';
import type { Project } from './project.js';

/** What a provider needs to know about the base image it builds on. */
export interface BaseInfo {
  name: string;
  kind: Kind | 'os';
  /** repository@sha256:... */
  ref: string;
  languageVersion?: string;
}

/** What a provider decided about a project: everything the Dockerfile needs. */
export interface BuildPlan {
  kind: Kind;
  /** Files copied before the sources, so the dependency layer is cached by their hash. */
  dependencyFiles: string[];
  /** Shell command of the dependency RUN step (our fixed strings only); none when nothing to install. */
  installCommand?: string;
  /** argv that starts the service. */
  entrypoint: string[];
  /** Human-readable facts: which lockfile, which entrypoint and why. */
  notes: string[];
  /** The service name the project itself suggests (pyproject/package.json name). */
  suggestedName?: string;
}

export interface Provider {
  readonly kind: Kind;
  /** True when the project looks like this kind. */
  detect(project: Project): boolean;
  /** Validates the project against the base; throws one InputError listing every problem. */
  plan(project: Project, base: BaseInfo, config: ProjectConfig): Promise<BuildPlan>;
}
