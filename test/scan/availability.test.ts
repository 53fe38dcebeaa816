/**
 * scan.enabled auto against a real registry: the scan runs only with trivy and its DB there;
 * a missing DB is a skip with the fix, a registry that cannot be asked is an error.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { UpstreamError } from '../../src/errors.js';
import { registryClientFor } from '../../src/registry/client.js';
import { scanSkipReason } from '../../src/scan/availability.js';
import { pushTrivyDb } from '../../src/scan/db.js';
import { resolveScanSettings } from '../../src/scan/settings.js';
import { freePort } from '../helpers/registry.js';

const registry = inject('registryHost');

describe('scanSkipReason', () => {
  let dir: string;
  let trivy: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'svcbuild-avail-'));
    trivy = join(dir, 'trivy');
    await writeFile(trivy, '#!/bin/sh\n');
    await chmod(trivy, 0o755);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const settings = (raw: Record<string, unknown>, host = registry) =>
    resolveScanSettings({ trivyPath: trivy, dbRepository: `${host}/avail-test/trivy-db:2`, ...raw }, { registryHost: host, stateDir: dir });

  it('GIVEN scan.enabled false or true THEN it is skipped, or runs without looking', async () => {
    const client = registryClientFor({ host: registry, plainHttp: true });
    expect(await scanSkipReason(settings({ enabled: false }), client, registry)).toBe('skipped: scan.enabled is false');
    expect(await scanSkipReason(settings({ enabled: true, trivyPath: '/nonexistent/trivy' }), client, registry)).toBeUndefined();
  });

  it('GIVEN auto WHEN trivy or the DB is missing THEN the reason names what to do; with both it runs', async () => {
    const client = registryClientFor({ host: registry, plainHttp: true });
    expect(await scanSkipReason(settings({ trivyPath: '/nonexistent/trivy' }), client, registry)).toBe(
      'skipped: no trivy at /nonexistent/trivy (scripts/install-trivy.sh installs it)',
    );
    expect(await scanSkipReason(settings({}), client, registry)).toBe(
      `skipped: no vulnerability DB at ${registry}/avail-test/trivy-db:2 (mirror one there, or set scan.enabled: false)`,
    );
    await pushTrivyDb(client, 'avail-test/trivy-db', new Uint8Array([0x1f, 0x8b]));
    expect(await scanSkipReason(settings({}), client, registry)).toBeUndefined();
  });

  it('GIVEN auto WHEN the registry does not answer THEN it is an error, not a skip', async () => {
    const host = `127.0.0.1:${await freePort()}`;
    const client = registryClientFor({ host, plainHttp: true });
    await expect(scanSkipReason(settings({}, host), client, host)).rejects.toBeInstanceOf(UpstreamError);
  });
});
