/** Pure rendering of the Argo objects svcbuild runs on: WorkflowTemplates and Workflows. */
export * from './settings.js';
export * from './sources.js';
export * from './templates.js';
export * from './workflow.js';
