import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { isLoopbackHost, isPrivateIpHost, parseConfig, plainHttpAllowed } from '../../src/config/schema.js';
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

  it('recognises private IP literals only: 10/8, 172.16/12, 192.168/16, fc00::/7', () => {
    const priv = [
      '10.244.0.1:5000',
      '10.0.0.1',
      '172.16.0.1:5000',
      '172.31.255.255',
      '192.168.1.2:443',
      '[fd00::1]:5000',
      'fc00::1',
      '[fdff:1::2]',
    ];
    const pub = [
      '172.15.0.1',
      '172.32.0.1:5000',
      '192.169.0.1',
      '11.0.0.1',
      '8.8.8.8:5000',
      '[fe80::1]:5000',
      '[2001:db8::1]',
      '10.example.com',
      'registry',
    ];
    expect(priv.filter((h) => !isPrivateIpHost(h))).toEqual([]);
    expect(pub.filter(isPrivateIpHost)).toEqual([]);
    expect(['127.0.0.1:5000', '[::1]:5000', 'localhost:5000', '10.244.0.1:5000'].every(plainHttpAllowed)).toBe(true);
    expect(['registry.example.com', '8.8.8.8', '[2001:db8::1]:5000', '256.0.0.1'].some(plainHttpAllowed)).toBe(false);
  });

  it('GIVEN a private IP registry THEN https by default, plain HTTP when set; a name or public IP is refused with the fix', () => {
    expect(parseConfig({ registry: { host: '10.244.0.1:5000' } }).registry.plainHttp).toBe(false);
    expect(parseConfig({ registry: { host: '10.244.0.1:5000', plainHttp: true } }).registry).toEqual({
      host: '10.244.0.1:5000',
      namespace: 'svcbuild',
      plainHttp: true,
    });
    expect(parseConfig({ registry: { host: '127.0.0.1:5000', plainHttp: false } }).registry.plainHttp).toBe(false);
    for (const host of ['registry.example.com', '203.0.113.7:5000']) {
      expect(() => parseConfig({ registry: { host, plainHttp: true } }), host).toThrow(
        `config.registry.plainHttp: plain HTTP is only allowed for a registry on loopback or a private IP address (10/8, 172.16/12, 192.168/16, fc00::/7), not ${host}; use TLS`,
      );
    }
  });

  it('GIVEN the registry variables a step container gets THEN they set host, namespace and plain HTTP', async () => {
    const cfg = await loadConfig({
      cwd: '/',
      home: '/opt/svcbuild',
      env: { SVCBUILD_REGISTRY: '10.244.0.1:5000', SVCBUILD_REGISTRY_NAMESPACE: 'bed/builds', SVCBUILD_REGISTRY_PLAIN_HTTP: 'true' },
    });
    expect(cfg.registry).toEqual({ host: '10.244.0.1:5000', namespace: 'bed/builds', plainHttp: true });
    const tls = await loadConfig({ cwd: '/', home: '/', env: { SVCBUILD_REGISTRY_PLAIN_HTTP: 'false' } });
    expect(tls.registry).toEqual({ host: '127.0.0.1:5000', namespace: 'svcbuild', plainHttp: false });
  });

  it('GIVEN a bad registry variable THEN one InputError names the variable and the fix', async () => {
    const load = async (env: Record<string, string>): Promise<InputError> => {
      try {
        await loadConfig({ cwd: '/', home: '/', env });
      } catch (e) {
        return e as InputError;
      }
      throw new Error('expected an InputError');
    };
    const notBool = await load({ SVCBUILD_REGISTRY_PLAIN_HTTP: 'yes' });
    expect(notBool).toBeInstanceOf(InputError);
    expect(notBool.issues).toEqual([
      {
        path: 'SVCBUILD_REGISTRY_PLAIN_HTTP',
        message: '"yes" is not true or false; set SVCBUILD_REGISTRY_PLAIN_HTTP=true or SVCBUILD_REGISTRY_PLAIN_HTTP=false',
      },
    ]);
    const refused = await load({
      SVCBUILD_REGISTRY: 'registry.example.com',
      SVCBUILD_REGISTRY_PLAIN_HTTP: 'true',
      SVCBUILD_REGISTRY_NAMESPACE: 'Bad',
    });
    expect(refused.issues).toEqual([
      {
        path: 'config.registry.namespace',
        message: 'lower-case path components separated by /, e.g. svcbuild or platform/builds (set by SVCBUILD_REGISTRY_NAMESPACE)',
      },
      {
        path: 'config.registry.plainHttp',
        message:
          'plain HTTP is only allowed for a registry on loopback or a private IP address (10/8, 172.16/12, 192.168/16, fc00::/7), not registry.example.com; use TLS (set by SVCBUILD_REGISTRY_PLAIN_HTTP)',
      },
    ]);
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
