/** The argo executor: builds as Argo Workflows through the Kubernetes API. */
export * from './executor.js';
export * from './status.js';
export * from './install.js';
