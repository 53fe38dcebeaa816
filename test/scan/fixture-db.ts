/**
 * The offline Trivy DB of the scan tests: built by tools/trivy-db-fixture (trivy-db's own
 * writer, so the layout is Trivy's) from tools/trivy-db-fixture/advisories.json, and pushed
 * to a test registry as the artifact `trivy --db-repository` downloads.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryClient } from '../../src/registry/client.js';
import { pushTrivyDb } from '../../src/scan/db.js';
import { defaultTrivyPath } from '../../src/scan/settings.js';
import { runOk } from '../../src/util/exec.js';
import { ROOT } from '../helpers/cli.js';
import { existsSync } from 'node:fs';

export const FIXTURE_DIR = join(ROOT, 'tools', 'trivy-db-fixture');

export interface FixtureAdvisory {
  id: string;
  bucket: string;
  package: string;
  severity: string;
  fixedVersion?: string;
  vulnerableVersions?: string[];
  patchedVersions?: string[];
}

export async function fixtureAdvisories(): Promise<FixtureAdvisory[]> {
  return (JSON.parse(await readFile(join(FIXTURE_DIR, 'advisories.json'), 'utf8')) as { advisories: FixtureAdvisory[] }).advisories;
}

/** Builds the fixture DB into `outDir` (trivy.db, metadata.json, db.tar.gz). */
export async function buildFixtureDb(outDir: string): Promise<string> {
  const bin = join(outDir, 'trivy-db-fixture');
  await runOk('go', ['build', '-o', bin, '.'], {
    cwd: FIXTURE_DIR,
    env: { ...process.env, GOFLAGS: '-mod=readonly -buildvcs=false' },
    timeoutMs: 600_000,
  });
  await runOk(bin, ['-advisories', join(FIXTURE_DIR, 'advisories.json'), '-out', join(outDir, 'db')]);
  return join(outDir, 'db', 'db.tar.gz');
}

/**
 * Builds the fixture DB and pushes it as `<host>/<repo>:2`; returns that repository. The
 * default repo is not the one builds look for (`trivy-db`), so a shared test registry does
 * not turn the scan on for every other test's builds.
 */
export async function serveFixtureDb(host: string, workDir: string, repo = 'test-fixtures/trivy-db'): Promise<string> {
  const tgz = await buildFixtureDb(workDir);
  const client = new RegistryClient({ host, plainHttp: true });
  await pushTrivyDb(client, repo, await readFile(tgz));
  return `${host}/${repo}:2`;
}

/** The trivy built by scripts/install-trivy.sh, when it is there. */
export const TRIVY = process.env.SVCBUILD_TRIVY ?? defaultTrivyPath();
export const HAVE_TRIVY = existsSync(TRIVY);
