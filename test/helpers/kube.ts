/**
 * A private Kubernetes API for a test file (issue 7, level 1): etcd + kube-apiserver built
 * from their Go modules (scripts/bed/build.sh, cached in $SVCBUILD_BED_CACHE or
 * ~/.cache/svcbuild-bed) and started by scripts/bed/apiserver.sh on free loopback ports, in a
 * run dir of its own, with Argo Workflows' full CRDs installed and Established.
 *
 * The first call on a fresh machine builds kube-apiserver (several minutes on 2 cores): give
 * the calling beforeAll a generous timeout (the repo's hookTimeout is 10 minutes).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BED_SCRIPTS = join(ROOT, 'scripts/bed');

export interface TestKube {
  /** Path of the admin kubeconfig (client certificate in group system:masters). */
  kubeconfig: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** The bed's run dir (pki/, etcd data, logs: etcd.log, apiserver.log). */
  runDir: string;
  /** PEM file of the CA that signed the serving and client certificates. */
  caFile: string;
  /**
   * A kubeconfig for user `name` (client certificate signed by the bed CA, organisation per
   * group) with no rights unless a (Cluster)RoleBinding grants them.
   */
  userKubeconfig(name: string, groups?: string[]): Promise<string>;
  /** Stops etcd and kube-apiserver and removes the run dir. Idempotent. */
  stop(): Promise<void>;
}

interface RunResult {
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      } else {
        resolvePromise({ stdout, stderr });
      }
    });
  });
}

/** Builds etcd, kube-apiserver and the Argo CRDs (cached: seconds when nothing changed). */
export async function buildBed(components: string[] = []): Promise<void> {
  await run(join(BED_SCRIPTS, 'build.sh'), components, process.env, 30 * 60_000);
}

export interface StartKubeOptions {
  /**
   * Address the apiserver listens on (default 127.0.0.1). A node (startNode) needs one its
   * pods can reach: startCluster uses 0.0.0.0.
   */
  bindAddress?: string;
}

/** Starts a private etcd + kube-apiserver with the Argo CRDs for the calling test file. */
export async function startKube(options: StartKubeOptions = {}): Promise<TestKube> {
  await buildBed(['etcd', 'kube-apiserver', 'argo-crds']);
  const runDir = await mkdtemp(join(tmpdir(), 'svcbuild-kube-'));
  // apiserver.sh refuses to take over a directory that is not a bed run dir: start from an
  // empty one it creates itself.
  await rm(runDir, { recursive: true, force: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SVCBUILD_BED_RUN: runDir,
    SVCBUILD_BED_SKIP_BUILD: '1',
    // If this test process dies without stop(), a watchdog tears the bed down.
    SVCBUILD_BED_OWNER_PID: String(process.pid),
  };
  for (const k of ['SVCBUILD_BED_APISERVER_PORT', 'SVCBUILD_BED_ETCD_PORT', 'SVCBUILD_BED_ETCD_PEER_PORT']) {
    delete env[k];
  }
  if (options.bindAddress) env.SVCBUILD_BED_BIND_ADDRESS = options.bindAddress;
  else delete env.SVCBUILD_BED_BIND_ADDRESS;
  const script = join(BED_SCRIPTS, 'apiserver.sh');
  const up = await run(script, ['up'], env, 5 * 60_000);
  const kubeconfig = up.stdout.trim().split('\n').pop() ?? '';
  const envOut = (await run(script, ['env'], env, 30_000)).stdout;
  const server = /SVCBUILD_BED_SERVER=(\S+)/.exec(envOut)?.[1];
  if (!kubeconfig.endsWith('admin.kubeconfig') || !server) {
    await run(script, ['down'], env, 60_000).catch(() => undefined);
    throw new Error(`apiserver.sh up gave no kubeconfig/server:\n${up.stdout}\n${up.stderr}\n${envOut}`);
  }
  // /readyz can answer before the CRDs' storage is ready (429 "storage is (re)initializing"):
  // wait until Workflows can be listed.
  for (let i = 0; ; i++) {
    const ok = await run('kubectl', ['--kubeconfig', kubeconfig, 'get', 'workflows.argoproj.io', '-A'], env, 30_000).then(
      () => true,
      () => false,
    );
    if (ok) break;
    if (i >= 60) {
      await run(script, ['down'], env, 60_000).catch(() => undefined);
      throw new Error('the apiserver never served Workflows');
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
  let stopped = false;
  return {
    kubeconfig,
    server,
    runDir,
    caFile: join(runDir, 'pki/ca.crt'),
    async userKubeconfig(name: string, groups: string[] = []): Promise<string> {
      const out = await run(script, ['user', name, ...groups], env, 30_000);
      return out.stdout.trim().split('\n').pop() ?? '';
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await run(script, ['down'], env, 60_000);
    },
  };
}

/** The level-2 node of a bed (scripts/bed/node.sh). */
export interface TestNode {
  /** Node name (svcbuild-bed unless SVCBUILD_BED_NODE_NAME says otherwise). */
  name: string;
  /** The node's InternalIP (the host's default-route address). */
  ip: string;
  /** Socket of the node's own containerd (use with `ctr --address`, namespace k8s.io). */
  containerdSocket: string;
  /** The locally built pause image containerd uses as sandbox image. */
  pauseImage: string;
  /** The node's pod subnet (CNI bridge + host-local IPAM). */
  podCidr: string;
  /** CNI bridge name on the host. */
  bridge: string;
  /**
   * Stops containerd (and every container), kubelet, kube-proxy, kube-controller-manager and
   * kube-scheduler, and removes what they left on the host (mounts, network namespaces, the
   * bridge, KUBE-* iptables chains, cgroups). The apiserver keeps running. Idempotent.
   */
  stop(): Promise<void>;
}

export interface StartNodeOptions {
  /** Registry (host:port, plain HTTP) the pause image is pushed to and pulled from. */
  registry?: string;
  /** More plain-HTTP registries containerd may pull from. */
  insecureRegistries?: string[];
  /**
   * The in-cluster pipeline's registry (startPipeline), on the bridge gateway
   * (`${BED_GATEWAY}:<port>`): containerd pulls from it over plain HTTP.
   */
  pipelineRegistry?: string;
}

/** The node's bridge gateway (node.sh, default pod CIDR): the host address pods reach. */
export const BED_GATEWAY = '10.244.0.1';

/** Components a node needs, built by build.sh (cached). */
export const NODE_COMPONENTS = ['kube-controller-manager', 'kube-scheduler', 'kubelet', 'kube-proxy', 'pause'];

/**
 * Adds a node to a bed started with a reachable bind address (startKube({ bindAddress:
 * '0.0.0.0' }), or use startCluster): containerd, CNI, kube-controller-manager,
 * kube-scheduler, kubelet, kube-proxy; resolves once the Node is Ready and schedulable.
 * Only one node runs per host. kube.stop() stops the node too.
 */
export async function startNode(kube: TestKube, options: StartNodeOptions = {}): Promise<TestNode> {
  await buildBed(NODE_COMPONENTS);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SVCBUILD_BED_RUN: kube.runDir,
    SVCBUILD_BED_SKIP_BUILD: '1',
  };
  if (options.registry) env.SVCBUILD_BED_REGISTRY = options.registry;
  if (options.insecureRegistries) env.SVCBUILD_BED_INSECURE_REGISTRIES = options.insecureRegistries.join(' ');
  if (options.pipelineRegistry) env.SVCBUILD_BED_PIPELINE_REGISTRY = options.pipelineRegistry;
  const script = join(BED_SCRIPTS, 'node.sh');
  await run(script, ['start'], env, 5 * 60_000);
  const envOut = (await run(join(BED_SCRIPTS, 'apiserver.sh'), ['env'], env, 30_000)).stdout;
  const get = (k: string): string => {
    const v = new RegExp(`^export ${k}=(\\S+)$`, 'm').exec(envOut)?.[1];
    if (!v) throw new Error(`node.sh start wrote no ${k}:\n${envOut}`);
    return v;
  };
  let stopped = false;
  return {
    name: get('SVCBUILD_BED_NODE'),
    ip: get('SVCBUILD_BED_NODE_IP'),
    containerdSocket: get('SVCBUILD_BED_CONTAINERD'),
    pauseImage: get('SVCBUILD_BED_PAUSE_IMAGE'),
    podCidr: env.SVCBUILD_BED_POD_CIDR ?? '10.244.0.0/24',
    bridge: env.SVCBUILD_BED_BRIDGE ?? 'svcbed0',
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await run(script, ['stop'], env, 2 * 60_000);
    },
  };
}

export interface TestCluster extends TestKube {
  node: TestNode;
}

/**
 * A private single-node cluster (level 2): startKube on all addresses, then startNode.
 * stop() tears down the node and then the apiserver.
 */
export async function startCluster(options: StartNodeOptions = {}): Promise<TestCluster> {
  const kube = await startKube({ bindAddress: '0.0.0.0' });
  let node: TestNode;
  try {
    node = await startNode(kube, options);
  } catch (e) {
    await kube.stop().catch(() => undefined);
    throw e;
  }
  return {
    ...kube,
    node,
    async stop(): Promise<void> {
      try {
        await node.stop();
      } finally {
        await kube.stop();
      }
    },
  };
}

/** Argo's workflow-controller of a bed (level 3, scripts/bed/argo.sh). */
export interface TestArgo {
  /** The controller's namespace (its workflow-controller-configmap lives there). */
  namespace: string;
  /** The argoexec image built here (`<registry>/svcbuild/bed/argoexec:<16 hex>`). */
  executorImage: string;
  /** The controller's log file on the host. */
  logFile: string;
  /** Stops the controller (the cluster keeps running). Idempotent. */
  stop(): Promise<void>;
}

export interface StartArgoOptions {
  /** Registry the argoexec image is pushed to: the one the node pulls from (startNode's). */
  registry?: string;
  /** The controller's namespace (default argo). */
  namespace?: string;
  /** Watch only this namespace (--namespaced); default: all namespaces. */
  managedNamespace?: string;
}

/** Components the controller needs, built by build.sh (cached). */
export const ARGO_COMPONENTS = ['workflow-controller', 'argoexec'];

/**
 * Runs Argo's workflow-controller (v4.0.7, built from its Go module) on the host against a
 * cluster with a node (startCluster), with an argoexec image built here and pushed to
 * options.registry. Resolves once the controller answers its health check. Only one runs per
 * host (its health port is fixed). cluster.stop() stops it too.
 */
export async function startArgo(cluster: TestKube, options: StartArgoOptions = {}): Promise<TestArgo> {
  await buildBed(ARGO_COMPONENTS);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SVCBUILD_BED_RUN: cluster.runDir,
    SVCBUILD_BED_SKIP_BUILD: '1',
  };
  if (options.registry) env.SVCBUILD_BED_REGISTRY = options.registry;
  if (options.namespace) env.SVCBUILD_BED_ARGO_NAMESPACE = options.namespace;
  else delete env.SVCBUILD_BED_ARGO_NAMESPACE;
  if (options.managedNamespace) env.SVCBUILD_BED_ARGO_MANAGED_NAMESPACE = options.managedNamespace;
  else delete env.SVCBUILD_BED_ARGO_MANAGED_NAMESPACE;
  const script = join(BED_SCRIPTS, 'argo.sh');
  await run(script, ['start'], env, 5 * 60_000);
  const envOut = await readFile(join(cluster.runDir, 'argo/env'), 'utf8');
  const get = (k: string): string => {
    const v = new RegExp(`^export ${k}=(\\S+)$`, 'm').exec(envOut)?.[1];
    if (!v) throw new Error(`argo.sh start wrote no ${k}:\n${envOut}`);
    return v;
  };
  let stopped = false;
  return {
    namespace: get('SVCBUILD_BED_ARGO_NAMESPACE'),
    executorImage: get('SVCBUILD_BED_ARGO_EXECUTOR_IMAGE'),
    logFile: join(cluster.runDir, 'argo/controller.log'),
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await run(script, ['stop'], env, 60_000);
    },
  };
}

/** svcbuild's in-cluster pipeline on a bed (scripts/bed/pipeline.sh). */
export interface TestPipeline {
  /** The registry pods reach (host:port on the bridge gateway, plain HTTP). */
  registry: string;
  /** The svcbuild config file pipeline.sh wrote (argo executor, that registry, the bed). */
  configFile: string;
  /** Build namespace of the WorkflowTemplates. */
  buildNamespace: string;
  /** Stops the pipeline's registry (the cluster keeps running). Idempotent. */
  stop(): Promise<void>;
}

export interface StartPipelineOptions {
  /** host:port on BED_GATEWAY; the same as startCluster's pipelineRegistry. */
  registry: string;
  /** Tenants installed (namespace tenant-<t> each). */
  tenants: string[];
  buildNamespace?: string;
}

/**
 * Runs scripts/bed/pipeline.sh start on a cluster with Argo (startArgo): a registry on the
 * bridge gateway, the step, Kaniko and base images pushed to it, `svcbuild install`. The first
 * call on a machine builds the Kaniko executor and the images (minutes).
 */
export async function startPipeline(cluster: TestKube, options: StartPipelineOptions): Promise<TestPipeline> {
  const buildNamespace = options.buildNamespace ?? 'svcbuild-builds';
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SVCBUILD_BED_RUN: cluster.runDir,
    SVCBUILD_BED_PIPELINE_REGISTRY: options.registry,
    SVCBUILD_BED_TENANTS: options.tenants.join(' '),
    SVCBUILD_BED_BUILD_NAMESPACE: buildNamespace,
  };
  const script = join(BED_SCRIPTS, 'pipeline.sh');
  const configFile = (await run(script, ['start'], env, 40 * 60_000)).stdout.trim();
  let stopped = false;
  return {
    registry: options.registry,
    configFile,
    buildNamespace,
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await run(script, ['stop'], env, 60_000);
    },
  };
}
