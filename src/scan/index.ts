/** The scan step: Trivy report parsing, the gate against the base image, referrers, the step. */
export * from './report.js';
export * from './gate.js';
export * from './settings.js';
export * from './trivy.js';
export * from './referrers.js';
export * from './step.js';
export * from './db.js';
