/**
 * The upload API's contract as an OpenAPI 3.1 document, built from the zod schemas the code
 * answers with (shared/http/api-schemas.ts) by zod 4's own JSON Schema output, and the JSON
 * Schemas of the manifest and the events. `GET /openapi.json` serves the document; `npm run docs`
 * commits it and the schemas under docs/ (a unit test fails when they drift from the code).
 */
import { METADATA_FIELDS, UploadMetadata } from '../core/metadata.js';
import { z } from 'zod';
import { ERROR_CODES } from '../core/errors.js';
import { AssetId, EventMessageV1, ManifestV1 } from '../core/schemas.js';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from '../state/assets.js';
import { OWNER_HEADER } from '../auth/principal.js';
import {
  ErrorBodySchema,
  FinishedVariantSchema,
  HealthSchema,
  ListedAssetSchema,
  ListPageSchema,
  PlaceholderSchema,
  QueuedVariantSchema,
  SignedUploadSchema,
  StatusProcessingSchema,
  StatusReadySchema,
  TicketId,
  TicketWaitingSchema,
  UploadProcessingSchema,
  UploadReadySchema,
} from './api-schemas.js';
import { SignedUploadRequest } from './signed-url.js';

/** A JSON value of the document (JSON Schema and OpenAPI objects alike). */
export type JsonObject = { [key: string]: unknown };

/** How every schema is converted: what the code writes (`output`), JSON Schema 2020-12 (OpenAPI 3.1's dialect). */
const CONVERSION = { target: 'draft-2020-12', io: 'output' } as const;

/** The components, by name: every schema an answer or a request of the API refers to. */
const COMPONENTS: Readonly<Record<string, z.ZodType>> = {
  Error: ErrorBodySchema,
  Manifest: ManifestV1,
  Placeholder: PlaceholderSchema,
  QueuedVariant: QueuedVariantSchema,
  UploadProcessing: UploadProcessingSchema,
  UploadReady: UploadReadySchema,
  StatusReady: StatusReadySchema,
  StatusProcessing: StatusProcessingSchema,
  FinishedVariant: FinishedVariantSchema,
  ListedAsset: ListedAssetSchema,
  ListPage: ListPageSchema,
  SignedUploadRequest,
  SignedUpload: SignedUploadSchema,
  TicketWaiting: TicketWaitingSchema,
  Health: HealthSchema,
  UploadMetadata,
};

/** Drops what zod puts at the top of a standalone schema but a component must not repeat. */
function bare(schema: JsonObject): JsonObject {
  const { $schema: _schema, $id: _id, ...rest } = schema;
  return rest;
}

/** The components' schemas, each used by another through `$ref` rather than copied into it. */
function componentSchemas(): Record<string, JsonObject> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(COMPONENTS)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { ...CONVERSION, uri: (id) => `#/components/schemas/${id}` });
  return Object.fromEntries(Object.entries(schemas).map(([id, schema]) => [id, bare(schema as JsonObject)]));
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonObject) => ({ 'application/json': { schema } });

/** An answer with a JSON body of component `name` (or one of several). */
function answer(description: string, ...names: string[]): JsonObject {
  const [only, ...more] = names;
  const schema = only !== undefined && more.length === 0 ? ref(only) : { oneOf: names.map(ref) };
  return { description, content: json(schema) };
}

/** The HTTP statuses error answers carry, and their codes (ERROR_CODES). */
function errorStatuses(): Map<number, string[]> {
  const statuses = new Map<number, string[]>();
  for (const [code, { status }] of Object.entries(ERROR_CODES))
    statuses.set(status, [...(statuses.get(status) ?? []), code]);
  return statuses;
}

/** Headers some error answers carry. */
const ERROR_HEADERS: Readonly<Record<number, Record<string, JsonObject>>> = {
  401: { 'WWW-Authenticate': { $ref: '#/components/headers/WWW-Authenticate' } },
  405: { Allow: { $ref: '#/components/headers/Allow' } },
  429: { 'Retry-After': { $ref: '#/components/headers/Retry-After' } },
  503: { 'Retry-After': { $ref: '#/components/headers/Retry-After' } },
};

/** One reusable response per error status, listing the codes that answer with it. */
function errorResponses(): Record<string, JsonObject> {
  return Object.fromEntries(
    [...errorStatuses()].map(([status, codes]) => [
      `Error${status}`,
      {
        description: `An error: \`error.code\` is one of ${codes.map((c) => `\`${c}\``).join(', ')} (docs/api.md, "Error codes").`,
        ...(ERROR_HEADERS[status] ? { headers: ERROR_HEADERS[status] } : {}),
        content: json(ref('Error')),
      },
    ]),
  );
}

/** The error answers of an operation, each the reusable response of its status. */
function errors(...statuses: number[]): Record<string, JsonObject> {
  return Object.fromEntries(statuses.map((s) => [String(s), { $ref: `#/components/responses/Error${s}` }]));
}

/** Error statuses any authenticated operation may answer: no credential, bad origin, a dependency down. */
const AUTHENTICATED_ERRORS = [401, 403, 500, 503];

const ownerHeader = { $ref: '#/components/parameters/Owner' };
/** A path parameter whose values `schema` describes. */
function pathParameter(name: string, schema: z.ZodType, description: string): JsonObject {
  return {
    name,
    in: 'path',
    required: true,
    description,
    schema: bare(z.toJSONSchema(schema, CONVERSION) as JsonObject),
  };
}
const assetIdParameter = pathParameter('id', AssetId, "The upload's `id` (the asset), as `POST /uploads` answered it.");
const ticketParameter = pathParameter('ticket', TicketId, 'The `ticket` of `POST /uploads/signed-url`.');

/** The CORS preflight every path answers without a credential. */
const preflight = {
  summary: 'CORS preflight',
  security: [],
  responses: { 204: { description: 'CORS headers for a configured origin.' }, ...errors(403) },
};

function paths(): JsonObject {
  return {
    '/uploads': {
      post: {
        operationId: 'upload',
        summary: "Upload an image as the caller's upload",
        parameters: [
          { name: 'filename', in: 'query', schema: { type: 'string' }, description: 'The file name of a raw body.' },
          {
            name: 'focus',
            in: 'query',
            schema: { type: 'string' },
            description: 'A focal point `x,y`, two numbers from 0 to 1, for cropped aspects.',
          },
          {
            name: METADATA_FIELDS.query,
            in: 'query',
            schema: { type: 'string', contentMediaType: 'application/json' },
            description: "A raw body's metadata as JSON text (`UploadMetadata`); or the header, not both.",
          },
          {
            name: METADATA_FIELDS.header,
            in: 'header',
            schema: { type: 'string', contentMediaType: 'application/json' },
            description: "A raw body's metadata as JSON text (`UploadMetadata`; non-ASCII as `\\u` escapes).",
          },
          ownerHeader,
        ],
        requestBody: {
          required: true,
          content: {
            'multipart/form-data': {
              schema: {
                type: 'object',
                properties: {
                  file: { contentMediaType: 'application/octet-stream' },
                  [METADATA_FIELDS.formField]: {
                    type: 'string',
                    contentMediaType: 'application/json',
                    description: "The upload's metadata as JSON text (`UploadMetadata`).",
                  },
                },
                required: ['file'],
              },
            },
            'application/octet-stream': {},
            'image/*': {},
          },
        },
        responses: {
          200: answer('The same image was already done with the deployed recipe.', 'UploadReady'),
          202: answer('Accepted: its variants are being made; poll `statusUrl`.', 'UploadProcessing'),
          ...errors(400, 413, 415, 422, 429, ...AUTHENTICATED_ERRORS),
        },
      },
      get: {
        operationId: 'listUploads',
        summary: "The caller's uploads, newest first",
        parameters: [
          {
            name: 'limit',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: MAX_LIST_LIMIT, default: DEFAULT_LIST_LIMIT },
          },
          {
            name: 'cursor',
            in: 'query',
            schema: { type: 'string' },
            description: 'The `nextCursor` of the previous page.',
          },
          ownerHeader,
        ],
        responses: { 200: answer('A page of uploads.', 'ListPage'), ...errors(400, ...AUTHENTICATED_ERRORS) },
      },
      options: preflight,
    },
    '/uploads/{id}': {
      parameters: [assetIdParameter, ownerHeader],
      get: {
        operationId: 'uploadStatus',
        summary: "Where the caller's upload stands (another owner's is 404)",
        responses: {
          200: answer('Ready: the manifest.', 'StatusReady'),
          202: answer('Processing: the variants written so far.', 'StatusProcessing'),
          ...errors(404, 422, ...AUTHENTICATED_ERRORS),
        },
      },
      delete: {
        operationId: 'deleteUpload',
        summary: "Take the caller's upload down (its image goes with its last upload)",
        responses: { 204: { description: 'Gone.' }, ...errors(404, ...AUTHENTICATED_ERRORS) },
      },
      options: preflight,
    },
    '/uploads/signed-url': {
      post: {
        operationId: 'signUpload',
        summary: 'A signed URL to PUT one image straight into the bucket (docs/signed-urls.md)',
        parameters: [ownerHeader],
        requestBody: { required: true, content: json(ref('SignedUploadRequest')) },
        responses: {
          201: answer('PUT the bytes to `uploadUrl` with exactly `headers`, before `expiresAt`.', 'SignedUpload'),
          ...errors(400, 413, 415, 429, ...AUTHENTICATED_ERRORS),
        },
      },
      options: preflight,
    },
    '/uploads/signed-url/{ticket}': {
      parameters: [ticketParameter, ownerHeader],
      get: {
        operationId: 'ticketStatus',
        summary: 'Where a signed-URL upload stands: waiting, then what `GET /uploads/{id}` answers',
        responses: {
          200: answer('Ready.', 'StatusReady'),
          202: answer('Waiting for the object, or processing.', 'TicketWaiting', 'StatusProcessing'),
          ...errors(404, 422, ...AUTHENTICATED_ERRORS),
        },
      },
      options: preflight,
    },
    '/healthz': {
      get: {
        operationId: 'health',
        summary: 'Health check',
        security: [],
        responses: { 200: answer('Up.', 'Health'), ...errors(403) },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'contract',
        summary: 'This document',
        security: [],
        responses: {
          200: { description: 'The OpenAPI 3.1 document.', content: json({ type: 'object' }) },
          ...errors(403),
        },
      },
    },
  };
}

/** Builds the document (pure: the same for every deployment, so the committed copy is the served one). */
export function buildOpenApiDocument(): JsonObject {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Image pipeline upload API',
      version: '1',
      description:
        'Upload images, follow them until their variants and manifest are ready, list and delete them (docs/api.md). Every answer is JSON; every error is `{error: {code, message, retryable, details?}}`. With `UPLOAD_AUTH=none` no credential is needed.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    security: [{ idToken: [] }, { sharedToken: [] }],
    paths: paths(),
    components: {
      schemas: componentSchemas(),
      responses: errorResponses(),
      parameters: {
        Owner: {
          name: OWNER_HEADER,
          in: 'header',
          required: false,
          schema: { type: 'string' },
          description: 'With the shared token only (a trusted backend): the user the request acts for.',
        },
      },
      headers: {
        'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer', minimum: 0 } },
        Allow: { description: 'The methods the path answers.', schema: { type: 'string' } },
        'WWW-Authenticate': { description: '`Bearer`.', schema: { type: 'string' } },
      },
      securitySchemes: {
        idToken: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: '`UPLOAD_AUTH=jwt`: an end user\'s OIDC ID token (docs/api.md, "Authentication").',
        },
        sharedToken: {
          type: 'http',
          scheme: 'bearer',
          description: '`UPLOAD_AUTH=token` (or jwt with `UPLOAD_TOKEN`): the shared token of a trusted backend.',
        },
      },
    },
  };
}

let cached: JsonObject | undefined;

/** The document `GET /openapi.json` serves, built once per instance. */
export function openApiDocument(): JsonObject {
  cached ??= buildOpenApiDocument();
  return cached;
}

/** A standalone JSON Schema (2020-12) of what the code writes, titled. */
function standalone(schema: z.ZodType, title: string): JsonObject {
  const { $schema, ...rest } = z.toJSONSchema(schema, CONVERSION) as JsonObject;
  return { $schema, title, ...rest };
}

/** The published JSON Schemas, by file under docs/schemas/: the manifest and each event type. */
export function publishedSchemas(): Record<string, JsonObject> {
  const events = EventMessageV1.options.map((option) => {
    const type = option.shape.type.value;
    return [`events/${type}.schema.json`, standalone(option, `${type} event, version 1`)] as const;
  });
  return {
    'manifest.schema.json': standalone(ManifestV1, '{id}/manifest.json, version 1'),
    ...Object.fromEntries(events),
  };
}
