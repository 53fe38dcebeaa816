/** The OpenAPI 3.1 document of the HTTP API; tests check every response against it. */

const nullable = (schema: Record<string, unknown>) => ({ anyOf: [schema, { type: 'null' }] });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Record<string, unknown>) => ({ 'application/json': { schema } });
const errorResponse = (description: string) => ({ description, content: json(ref('Error')) });

const STANDARD_ERRORS = {
  '400': errorResponse('Invalid input: every problem with its field path'),
  '401': errorResponse('Missing or unknown bearer token'),
  '404': errorResponse('Not found (also for another tenant’s objects)'),
};

const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9]{14}-[0-9a-f]{6}$' } };
const nameParam = {
  name: 'name',
  in: 'path',
  required: true,
  schema: { type: 'string', maxLength: 64, pattern: '^[a-z]([a-z0-9-]*[a-z0-9])?$' },
};

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'svcbuild',
    version: '0.1.0',
    description: 'Submit a project archive or git source and follow it to a running platform service.',
  },
  servers: [{ url: '/' }],
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        additionalProperties: false,
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message', 'requestId'],
            additionalProperties: false,
            properties: {
              code: { type: 'string' },
              message: { type: 'string' },
              requestId: { type: 'string' },
              issues: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['path', 'message'],
                  additionalProperties: false,
                  properties: { path: { type: 'string' }, message: { type: 'string' } },
                },
              },
            },
          },
        },
      },
      BuildSpec: {
        type: 'object',
        additionalProperties: false,
        properties: {
          name: { type: 'string', maxLength: 64 },
          kind: { type: 'string', maxLength: 32 },
          base: { type: 'string', maxLength: 64 },
          port: { type: 'integer', minimum: 1024, maximum: 65535 },
          route: { type: 'string', pattern: '^/([a-z0-9._~-]+(/[a-z0-9._~-]+)*)?$' },
          env: {
            type: 'object',
            propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
            additionalProperties: { type: 'string', maxLength: 4096 },
          },
        },
      },
      GitBuildRequest: {
        type: 'object',
        required: ['git'],
        additionalProperties: false,
        properties: {
          git: {
            type: 'object',
            required: ['url'],
            additionalProperties: false,
            properties: {
              url: { type: 'string', maxLength: 2048 },
              ref: { type: 'string', maxLength: 255 },
              subdirectory: { type: 'string', maxLength: 1024 },
            },
          },
          spec: ref('BuildSpec'),
        },
      },
      Step: {
        type: 'object',
        required: ['name', 'status', 'seconds', 'message'],
        additionalProperties: false,
        properties: {
          name: { type: 'string' },
          status: { enum: ['pending', 'running', 'succeeded', 'failed', 'skipped', 'cached'] },
          seconds: nullable({ type: 'number' }),
          message: nullable({ type: 'string' }),
        },
      },
      Build: {
        type: 'object',
        additionalProperties: false,
        required: [
          'id',
          'status',
          'service',
          'kind',
          'spec',
          'source',
          'createdAt',
          'steps',
          'image',
          'base',
          'overlay',
          'chart',
          'scan',
          'error',
          'links',
          'attempts',
        ],
        properties: {
          id: { type: 'string' },
          status: { enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled'] },
          service: nullable({ type: 'string' }),
          qualifiedService: nullable({ type: 'string' }),
          kind: nullable({ type: 'string' }),
          spec: ref('BuildSpec'),
          source: {
            oneOf: [
              {
                type: 'object',
                required: ['type', 'format', 'sha256', 'files', 'bytes'],
                properties: {
                  type: { const: 'archive' },
                  format: { type: 'string' },
                  sha256: { type: 'string' },
                  files: { type: 'integer' },
                  bytes: { type: 'integer' },
                },
              },
              {
                type: 'object',
                required: ['type', 'url', 'ref', 'subdirectory'],
                properties: {
                  type: { const: 'git' },
                  url: { type: 'string' },
                  ref: { type: 'string' },
                  subdirectory: { type: 'string' },
                  commit: { type: 'string' },
                },
              },
            ],
          },
          createdAt: { type: 'string', format: 'date-time' },
          startedAt: nullable({ type: 'string', format: 'date-time' }),
          finishedAt: nullable({ type: 'string', format: 'date-time' }),
          steps: { type: 'array', items: ref('Step') },
          image: nullable({ type: 'string', pattern: '@sha256:[a-f0-9]{64}$' }),
          base: nullable({ type: 'string', pattern: '@sha256:[a-f0-9]{64}$' }),
          overlay: nullable({
            type: 'object',
            required: ['digest', 'bytes'],
            properties: { digest: { type: 'string' }, bytes: { type: 'integer' }, ref: { type: 'string' } },
          }),
          chart: nullable({
            type: 'object',
            required: ['ref', 'version'],
            properties: { ref: { type: 'string' }, version: { type: 'string' }, digest: { type: 'string' } },
          }),
          scan: nullable({ type: 'object' }),
          error: nullable({
            type: 'object',
            required: ['code', 'message'],
            properties: { step: { type: 'string' }, code: { type: 'string' }, message: { type: 'string' } },
          }),
          retryOf: nullable({ type: 'string' }),
          attempts: { type: 'integer', minimum: 0 },
          links: {
            type: 'object',
            required: ['self', 'logs', 'cancel', 'retry'],
            properties: { self: { type: 'string' }, logs: { type: 'string' }, cancel: { type: 'string' }, retry: { type: 'string' } },
          },
        },
      },
      Service: {
        type: 'object',
        required: ['tenant', 'name', 'service', 'build', 'image', 'base', 'chart', 'config', 'revision', 'status', 'updatedAt'],
        properties: {
          tenant: { type: 'string' },
          name: { type: 'string' },
          service: { type: 'string' },
          build: { type: 'string' },
          image: { type: 'string' },
          base: { type: 'string' },
          overlay: { type: 'object' },
          chart: {
            type: 'object',
            required: ['ref', 'version'],
            properties: { ref: { type: 'string' }, version: { type: 'string' }, digest: { type: 'string' } },
          },
          config: {
            type: 'object',
            required: ['port', 'route', 'env', 'replicas', 'memory', 'cpu'],
            properties: {
              port: { type: 'integer' },
              route: { type: 'string' },
              env: { type: 'object', additionalProperties: { type: 'string' } },
              replicas: { type: 'integer' },
              memory: { type: 'string' },
              cpu: { type: 'string' },
            },
          },
          revision: { type: 'integer' },
          status: { enum: ['published', 'deployed'] },
          updatedAt: { type: 'string', format: 'date-time' },
        },
      },
      ServicePatch: {
        type: 'object',
        additionalProperties: false,
        properties: {
          port: { type: 'integer', minimum: 1024, maximum: 65535 },
          route: { type: 'string', pattern: '^/([a-z0-9._~-]+(/[a-z0-9._~-]+)*)?$' },
          env: {
            type: 'object',
            propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
            additionalProperties: { type: 'string', maxLength: 4096 },
          },
          replicas: { type: 'integer', minimum: 0, maximum: 50 },
          memory: { type: 'string', pattern: '^[1-9][0-9]*(Mi|Gi)$' },
          cpu: { type: 'string', pattern: '^([1-9][0-9]*m|[1-9][0-9]*(\\.[0-9]+)?)$' },
        },
      },
    },
  },
  security: [{ bearer: [] }],
  paths: {
    '/healthz': {
      get: {
        security: [],
        summary: 'Liveness',
        responses: {
          '200': { description: 'alive', content: json({ type: 'object', required: ['status'], properties: { status: { const: 'ok' } } }) },
        },
      },
    },
    '/readyz': {
      get: {
        security: [],
        summary: 'Readiness',
        responses: {
          '200': { description: 'ready', content: json({ type: 'object', required: ['status', 'executor'] }) },
          '503': { description: 'not ready', content: json({ type: 'object', required: ['status', 'executor'] }) },
        },
      },
    },
    '/metrics': {
      get: {
        security: [],
        summary: 'Prometheus metrics',
        responses: { '200': { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    '/openapi.json': {
      get: {
        security: [],
        summary: 'This document',
        responses: { '200': { description: 'OpenAPI 3.1', content: json({ type: 'object' }) } },
      },
    },
    '/v1/base-images': {
      get: {
        summary: 'The base image catalog',
        responses: {
          '200': {
            description: 'base images',
            content: json({
              type: 'object',
              required: ['items'],
              properties: {
                items: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['name', 'kind', 'languageVersion', 'description'],
                    properties: {
                      name: { type: 'string' },
                      kind: { type: 'string' },
                      languageVersion: nullable({ type: 'string' }),
                      description: { type: 'string' },
                    },
                  },
                },
              },
            }),
          },
          '401': STANDARD_ERRORS['401'],
        },
      },
    },
    '/v1/builds': {
      post: {
        summary: 'Submit a build: an archive (multipart) or a git source (JSON)',
        parameters: [
          {
            name: 'Idempotency-Key',
            in: 'header',
            required: false,
            schema: { type: 'string', maxLength: 128, pattern: '^[\\x21-\\x7e]+$' },
          },
        ],
        requestBody: {
          required: true,
          content: {
            'multipart/form-data': {
              schema: {
                type: 'object',
                required: ['source'],
                properties: {
                  source: { type: 'string', format: 'binary', description: 'zip or tar.gz of the project' },
                  spec: { type: 'string', description: 'BuildSpec as JSON' },
                },
              },
            },
            'application/json': { schema: ref('GitBuildRequest') },
          },
        },
        responses: {
          '202': { description: 'accepted', content: json(ref('Build')) },
          '200': { description: 'the build of an earlier submission with the same Idempotency-Key', content: json(ref('Build')) },
          ...STANDARD_ERRORS,
        },
      },
      get: {
        summary: 'List builds, newest first',
        parameters: [
          { name: 'service', in: 'query', schema: { type: 'string', maxLength: 64 } },
          { name: 'status', in: 'query', schema: { enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled'] } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
        ],
        responses: {
          '200': {
            description: 'builds',
            content: json({ type: 'object', required: ['items'], properties: { items: { type: 'array', items: ref('Build') } } }),
          },
          '400': STANDARD_ERRORS['400'],
          '401': STANDARD_ERRORS['401'],
        },
      },
    },
    '/v1/builds/{id}': {
      get: {
        summary: 'A build: status, steps, results, error',
        parameters: [idParam],
        responses: { '200': { description: 'the build', content: json(ref('Build')) }, ...STANDARD_ERRORS },
      },
    },
    '/v1/builds/{id}/logs': {
      get: {
        summary: 'Build logs; ?follow=true streams server-sent events until the build ends',
        parameters: [idParam, { name: 'follow', in: 'query', schema: { enum: ['true', 'false', '1', '0'] } }],
        responses: {
          '200': {
            description:
              'log lines; as server-sent events, one `data` event per line and a final `end` event whose data is {"status": ...}',
            content: {
              'text/plain': { schema: { type: 'string' } },
              // OpenAPI 3.1 has no itemSchema: for an event stream, `schema` describes each event.
              'text/event-stream': {
                schema: {
                  type: 'object',
                  required: ['data'],
                  properties: {
                    event: { enum: ['message', 'end'] },
                    data: { type: 'string' },
                    id: { type: 'string' },
                    retry: { type: 'integer' },
                  },
                },
              },
            },
          },
          ...STANDARD_ERRORS,
        },
      },
    },
    '/v1/builds/{id}/cancel': {
      post: {
        summary: 'Cancel a queued or running build',
        parameters: [idParam],
        responses: {
          '200': { description: 'cancelled', content: json(ref('Build')) },
          '409': errorResponse('The build has already ended'),
          ...STANDARD_ERRORS,
        },
      },
    },
    '/v1/builds/{id}/retry': {
      post: {
        summary: 'Retry a failed or cancelled build as a new build',
        parameters: [idParam],
        responses: {
          '202': { description: 'the new build', content: json(ref('Build')) },
          '409': errorResponse('The build has not failed'),
          ...STANDARD_ERRORS,
        },
      },
    },
    '/v1/services': {
      get: {
        summary: 'The tenant’s services',
        responses: {
          '200': {
            description: 'services',
            content: json({ type: 'object', required: ['items'], properties: { items: { type: 'array', items: ref('Service') } } }),
          },
          '401': STANDARD_ERRORS['401'],
        },
      },
    },
    '/v1/services/{name}': {
      get: {
        summary: 'A service',
        parameters: [nameParam],
        responses: { '200': { description: 'the service', content: json(ref('Service')) }, ...STANDARD_ERRORS },
      },
      patch: {
        summary: 'Change a service’s configuration; redeploys without a rebuild',
        parameters: [nameParam],
        requestBody: { required: true, content: json(ref('ServicePatch')) },
        responses: { '200': { description: 'the service', content: json(ref('Service')) }, ...STANDARD_ERRORS },
      },
      delete: {
        summary: 'Delete (uninstall) a service',
        parameters: [nameParam],
        responses: { '204': { description: 'deleted' }, ...STANDARD_ERRORS },
      },
    },
  },
} as const;
