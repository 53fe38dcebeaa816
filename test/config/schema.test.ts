import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { isLoopbackHost, parseConfig } from '../../src/config/schema.js';
import { loadConfig } from '../../src/config/load.js';

describe('config', () => {
  it('defaults to the loopback registry over plain HTTP and all kinds', () => {
    const cfg = parseConfig({});
    expect(cfg.registry).toEqual({ host: '127.0.0.1:5000', namespace: 'svcbuild', plainHttp: true });
    expect(cfg.enabledKinds).toEqual(['python', 'node', 'binary']);
    expect(cfg.defaults.base).toEqual({ python: 'python-3.13', node: 'node-22', binary: 'binary' });
  });

  it('uses TLS for other hosts and refuses plain HTTP to them', () => {
    expect(parseConfig({ registry: { host: 'registry.example.com' } }).registry.plainHttp).toBe(false);
    let err: unknown;
    try {
      parseConfig({ registry: { host: 'registry.example.com', plainHttp: true }, enabledKinds: ['cobol'] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).issues.map((i) => i.path).sort()).toEqual(['config.enabledKinds.0', 'config.registry.plainHttp']);
  });

  it('rejects a default base that is not in the catalog', () => {
    expect(() => parseConfig({ defaults: { base: { python: 'python-2.7', node: 'node-22', binary: 'binary' } } })).toThrow(
      'config.defaults.base.python: unknown base image "python-2.7"',
    );
  });

  it('recognises loopback hosts only', () => {
    expect(['127.0.0.1:5000', 'localhost', '[::1]:5000', '127.1.2.3'].map(isLoopbackHost)).toEqual([true, true, true, true]);
    expect(['10.0.0.1:5000', 'example.com', '127.0.0.1.example.com'].map(isLoopbackHost)).toEqual([false, false, false]);
  });

  it('reads SVCBUILD_* overrides once, resolving relative paths against the installation', async () => {
    const cfg = await loadConfig({
      cwd: '/',
      home: '/opt/svcbuild',
      env: { SVCBUILD_REGISTRY: '127.0.0.1:6000', SVCBUILD_ENABLED_KINDS: 'python, node' },
    });
    expect(cfg.registry.host).toBe('127.0.0.1:6000');
    expect(cfg.enabledKinds).toEqual(['python', 'node']);
    expect(cfg.stateDir).toBe('/opt/svcbuild/.state');
  });
});
