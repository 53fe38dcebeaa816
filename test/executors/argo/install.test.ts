/**
 * The pure half of `svcbuild install`: the CA bundle check and ConfigMap, and the concurrency
 * keys (test/executors/argo/executor.test.ts installs them into a real kube-apiserver).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { caBundleConfigMap, checkCaBundle, concurrencyKeys, missingKeys } from '../../../src/executors/argo/install.js';

const CA = readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'ca', 'test-ca.pem'), 'utf8');

describe('install: CA bundle', () => {
  it('GIVEN PEM certificates THEN no issue, and the ConfigMap holds the bundle as ca-certificates.crt', () => {
    expect(checkCaBundle(CA + CA)).toEqual([]);
    expect(caBundleConfigMap(CA)).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'svcbuild-ca-bundle',
        labels: { 'app.kubernetes.io/name': 'svcbuild', 'app.kubernetes.io/component': 'ca-bundle' },
      },
      data: { 'ca-certificates.crt': CA },
    });
  });

  it('GIVEN no certificate, a broken one or too much THEN issues of --ca-bundle with the fix', () => {
    expect(checkCaBundle('not a bundle')).toEqual([
      {
        path: '--ca-bundle',
        message: 'holds no PEM certificate (-----BEGIN CERTIFICATE-----); give a CA bundle such as /etc/ssl/certs/ca-certificates.crt',
      },
    ]);
    const broken = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    const issues = checkCaBundle(CA + broken);
    expect(issues.map((i) => [i.path, i.message.replace(/ \(.*\)$/, '')])).toEqual([
      ['--ca-bundle', 'certificate 2 of 2 is not a valid X.509 certificate'],
    ]);
    const big = CA.repeat(Math.ceil((1024 * 1024) / CA.length) + 1);
    expect(checkCaBundle(big)).toEqual([
      {
        path: '--ca-bundle',
        message: `${Buffer.byteLength(big)} bytes: a ConfigMap holds at most 1 MiB; give only the CAs the builds need`,
      },
    ]);
  });
});

describe('install: concurrency keys', () => {
  it('GIVEN tenants THEN one key each with the per-tenant number, and one base image build at a time', () => {
    expect(concurrencyKeys(['acme', 'beta'], 3)).toEqual({ 'base-images': '1', acme: '3', beta: '3' });
    expect(concurrencyKeys([], 2, 'bases')).toEqual({ bases: '1' });
  });

  it('GIVEN keys already there THEN only the missing ones are added, whatever their values', () => {
    expect(missingKeys({ acme: '7', 'base-images': '0' }, { 'base-images': '1', acme: '2', beta: '2' })).toEqual({ beta: '2' });
    expect(missingKeys(undefined, { acme: '2' })).toEqual({ acme: '2' });
    expect(missingKeys({ acme: '2' }, { acme: '2' })).toEqual({});
  });
});
