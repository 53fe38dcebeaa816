import { describe, expect, it } from 'vitest';
import { renderDockerfile } from '../../src/providers/dockerfile.js';
import { InternalError } from '../../src/errors.js';

const BASE = {
  name: 'python-3.13',
  kind: 'python' as const,
  ref: `127.0.0.1:5000/svcbuild/base/python-3.13@sha256:${'a'.repeat(64)}`,
  languageVersion: '3.13',
};

describe('renderDockerfile', () => {
  it('copies the dependency manifest before the sources and runs as user', () => {
    // GIVEN a python plan WHEN rendered THEN the exact Dockerfile comes out
    const text = renderDockerfile(
      {
        kind: 'python',
        dependencyFiles: ['pyproject.toml', 'uv.lock'],
        installCommand: 'uv pip install x',
        entrypoint: ['python', '/project/app/main.py'],
        notes: [],
      },
      BASE,
      { port: 8080 },
    );
    expect(text.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      `FROM ${BASE.ref}`,
      'USER user',
      'WORKDIR /project/app',
      'ENV PORT=8080 CONTEXT_ROOT=/',
      'EXPOSE 8080',
      'ENTRYPOINT ["python","/project/app/main.py"]',
      'COPY --chown=user:user ["pyproject.toml","uv.lock","/project/app/"]',
      'RUN uv pip install x',
      'COPY --chown=user:user . /project/app/',
      '',
    ]);
  });

  it('keeps hostile entrypoint strings inside the JSON array', () => {
    // GIVEN an entrypoint argument that tries to close the array and add an instruction
    const text = renderDockerfile(
      { kind: 'binary', dependencyFiles: [], entrypoint: ['/project/app/x', '"] RUN rm -rf / #'], notes: [] },
      BASE,
      { port: 8080 },
    );
    // THEN it is one JSON-encoded element of ENTRYPOINT
    expect(text).toContain('ENTRYPOINT ["/project/app/x","\\"] RUN rm -rf / #"]');
    expect(text.split('\n').filter((l) => l.startsWith('RUN'))).toEqual([]);
  });

  it('refuses line breaks, unsafe file names and bases not pinned by digest', () => {
    expect(() =>
      renderDockerfile({ kind: 'binary', dependencyFiles: [], entrypoint: ['a\nRUN x'], notes: [] }, BASE, { port: 8080 }),
    ).toThrow(InternalError);
    expect(() =>
      renderDockerfile({ kind: 'node', dependencyFiles: ['../etc/passwd'], entrypoint: ['node'], notes: [] }, BASE, { port: 8080 }),
    ).toThrow(InternalError);
    expect(() =>
      renderDockerfile(
        { kind: 'node', dependencyFiles: [], entrypoint: ['node'], notes: [] },
        { ...BASE, ref: 'debian:latest' },
        { port: 8080 },
      ),
    ).toThrow('base image must be referenced by digest, got debian:latest');
  });
});
