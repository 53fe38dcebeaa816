/**
 * One registry for the whole test run: the slow suites build base images once into it and
 * share them. Each test file still uses its own state directory.
 */
import type { TestProject } from 'vitest/node';
import { startRegistry, type TestRegistry } from './registry.js';

let registry: TestRegistry | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  registry = await startRegistry();
  project.provide('registryHost', registry.host);
  return async () => {
    await registry?.stop();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    registryHost: string;
  }
}
