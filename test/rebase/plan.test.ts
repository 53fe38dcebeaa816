import { describe, expect, it } from 'vitest';
import { parsePreinstalled, planRebase, rebaseBlockers, type ImageParts } from '../../src/rebase/plan.js';

const L = (n: string) => ({
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  digest: `sha256:${n.repeat(64).slice(0, 64)}`,
  size: 10,
});
const D = (n: string) => `sha256:${n.repeat(64).slice(0, 64)}`;

function image(layers: string[], env: string[], history: number): ImageParts {
  return {
    manifest: { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: L('c'), layers: layers.map(L) },
    config: {
      rootfs: { type: 'layers', diff_ids: layers.map(D) },
      config: { Env: env, User: 'user' },
      history: Array.from({ length: history }, (_, i) => ({ created_by: `step ${i}` })),
    },
  };
}

describe('planRebase', () => {
  it('keeps the project layers and takes base layers, history and base env from the new base', () => {
    // GIVEN an image of two base layers (a, b) plus one project layer (p)
    const oldBase = image(['a', 'b'], ['PATH=/usr/bin', 'LANG=C'], 2);
    const img = image(['a', 'b', 'p'], ['PATH=/usr/bin', 'LANG=C', 'PORT=8080'], 3);
    // AND a new base of three layers whose PATH changed
    const newBase = image(['a', 'e', 'f'], ['PATH=/usr/local/bin:/usr/bin', 'LANG=C'], 3);
    // WHEN re-based
    const plan = planRebase(img, oldBase, newBase, new Date('2026-01-01T00:00:00Z'));
    // THEN the layers are the new base's plus the project's, in order
    expect(plan.manifest.layers.map((l) => l.digest)).toEqual([D('a'), D('e'), D('f'), D('p')]);
    expect((plan.config.rootfs as { diff_ids: string[] }).diff_ids).toEqual([D('a'), D('e'), D('f'), D('p')]);
    expect((plan.config.history as unknown[]).length).toBe(4);
    // AND the env is the new base's with the build's own variables on top
    expect((plan.config.config as { Env: string[] }).Env).toEqual(['PATH=/usr/local/bin:/usr/bin', 'LANG=C', 'PORT=8080']);
    expect((plan.config.config as { User: string }).User).toBe('user');
    expect(plan.config.created).toBe('2026-01-01T00:00:00.000Z');
  });

  it('refuses an image that is not built on the old base', () => {
    expect(() => planRebase(image(['x', 'p'], [], 2), image(['a', 'b'], [], 2), image(['a'], [], 1))).toThrow();
  });
});

describe('rebaseBlockers', () => {
  const c = 'click==8.3.1\nidna==3.11\n';
  it('allows a new base with the same language version and preinstalled set', () => {
    expect(rebaseBlockers({ languageVersion: '3.13', preinstalled: c }, { languageVersion: '3.13', preinstalled: c })).toEqual([]);
  });
  it('says why a rebuild is needed', () => {
    expect(
      rebaseBlockers(
        { languageVersion: '3.13', preinstalled: c },
        { languageVersion: '3.14', preinstalled: 'click==8.4.0\nrequests==2.0\n' },
      ),
    ).toEqual([
      'the language version changes from 3.13 to 3.14',
      'preinstalled click changes from 8.3.1 to 8.4.0',
      'preinstalled idna 3.11 is gone from the new base',
      'the new base preinstalls requests 2.0, which the service may also carry',
    ]);
  });
  it('reads constraints files and package.json dependencies', () => {
    expect([...parsePreinstalled('# c\nCharset_Normalizer==3.4.4\nurllib3==2.5.0 ; python_version > "3"\n')]).toEqual([
      ['charset-normalizer', '3.4.4'],
      ['urllib3', '2.5.0'],
    ]);
    expect([...parsePreinstalled('{"name":"b","dependencies":{"express":"5.1.0"}}')]).toEqual([['express', '5.1.0']]);
  });
});
