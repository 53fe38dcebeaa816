import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { resolveScanSettings } from '../../src/scan/settings.js';

describe('scan settings', () => {
  const ctx = { registryHost: '127.0.0.1:5000', stateDir: '/var/lib/svcbuild', env: { SVCBUILD_TOOLS: '/opt/tools' } };

  it('defaults: gate at HIGH, DB mirrored in the build registry, cache under the state dir', () => {
    expect(resolveScanSettings(undefined, ctx)).toEqual({
      enabled: 'auto',
      threshold: 'HIGH',
      ignore: [],
      trivyPath: '/opt/tools/bin/trivy',
      dbRepository: '127.0.0.1:5000/trivy-db:2',
      cacheDir: '/var/lib/svcbuild/trivy',
      timeoutSeconds: 900,
    });
  });

  it('rejects a bad threshold, an ignore entry without a reason and a malformed expiry, naming each field', () => {
    let err: unknown;
    try {
      resolveScanSettings(
        {
          threshold: 'SEVERE',
          ignore: [
            { id: 'CVE-1', reason: ' ' },
            { id: 'CVE-2', reason: 'ok', expires: 'next week' },
          ],
        },
        ctx,
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).issues.map((i) => i.path)).toEqual(['scan.threshold', 'scan.ignore.0.reason', 'scan.ignore.1.expires']);
  });
});
