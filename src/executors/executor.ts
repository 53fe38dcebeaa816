/**
 * The one interface both executors implement: the API and the CLI talk only to this. The
 * executor's own state is the only state (files on disk locally, Workflow objects in a
 * cluster), so a restarted server loses nothing.
 */
import type { BuildRecord, BuildSpec, BuildStatus, GitSource, SourceInfo } from '../domain/build.js';

export interface ArchiveSubmission {
  type: 'archive';
  /** A directory holding the checked, extracted project; the executor takes it over. */
  dir: string;
  info: Extract<SourceInfo, { type: 'archive' }>;
}

export interface GitSubmission {
  type: 'git';
  git: GitSource;
}

export interface Submission {
  tenant: string;
  spec: BuildSpec;
  source: ArchiveSubmission | GitSubmission;
  /** Same tenant and key: the same build, however often submitted. */
  idempotencyKey?: string;
}

export interface BuildFilter {
  service?: string;
  status?: BuildStatus;
  limit?: number;
}

export interface ServiceConfig {
  port: number;
  route: string;
  env: Record<string, string>;
  replicas: number;
  memory: string;
  cpu: string;
}

export interface ServiceRecord {
  tenant: string;
  name: string;
  service: string;
  build: string;
  image: string;
  base: string;
  overlay?: BuildRecord['overlay'];
  chart: { ref: string; version: string; digest?: string };
  config: ServiceConfig;
  revision: number;
  status: 'published' | 'deployed';
  updatedAt: string;
}

export interface Executor {
  readonly name: 'local' | 'argo';
  start(): Promise<void>;
  stop(): Promise<void>;
  ready(): Promise<boolean>;
  submit(s: Submission): Promise<{ record: BuildRecord; created: boolean }>;
  get(tenant: string, id: string): Promise<BuildRecord>;
  list(tenant: string, filter: BuildFilter): Promise<BuildRecord[]>;
  /** Log lines; with follow, keeps yielding until the build ends or the signal aborts. */
  logs(tenant: string, id: string, opts: { follow: boolean; signal?: AbortSignal }): AsyncIterable<string>;
  cancel(tenant: string, id: string): Promise<BuildRecord>;
  retry(tenant: string, id: string): Promise<BuildRecord>;
  getService(tenant: string, name: string): Promise<ServiceRecord>;
  listServices(tenant: string): Promise<ServiceRecord[]>;
  updateService(tenant: string, name: string, patch: Partial<ServiceConfig>): Promise<ServiceRecord>;
  deleteService(tenant: string, name: string): Promise<void>;
}
