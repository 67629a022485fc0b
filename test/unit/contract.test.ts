/**
 * The API's contract (shared/http/openapi.ts): the committed docs/openapi.json and
 * docs/schemas/ are exactly what `npm run docs` generates from the code, `GET /openapi.json`
 * serves the same document, every schema compiles under strict Ajv, every `$ref` resolves, every
 * error status has its response, and the schemas refuse what the code would never write.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { contractFiles } from '../../local/contract-files.js';
import { ERROR_CODES } from '../../shared/core/errors.js';
import { EventMessageV1, type EventMessage } from '../../shared/core/schemas.js';
import { buildOpenApiDocument, openApiDocument, publishedSchemas } from '../../shared/http/openapi.js';
import { Contract, newAjv, publishedSchema } from '../fixtures/contract.js';

const root = new URL('../../../', import.meta.url);
const read = (file: string) => readFileSync(new URL(file, root), 'utf8');
const ID = '0123456789abcdef0123456789abcdef';
const AT = '2026-01-02T03:04:05.000Z';

/** Every `$ref` in a JSON value. */
function refsIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(refsIn);
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, v]) => (key === '$ref' && typeof v === 'string' ? [v] : refsIn(v)));
}

describe('the contract: OpenAPI document and JSON Schemas', () => {
  describe('committed files', () => {
    for (const { file, text } of contractFiles()) {
      it(`${file} is what npm run docs generates from the code`, () => {
        expect(read(file) === text, `${file} is out of date: run \`npm run docs\` and commit the result`).to.equal(
          true,
        );
      });
    }

    it('docs/schemas/ holds no schema the code no longer publishes', () => {
      const committed = readdirSync(new URL('docs/schemas/', root), { recursive: true, encoding: 'utf8' })
        .filter((name) => name.endsWith('.json'))
        .sort();
      expect(committed).to.deep.equal(Object.keys(publishedSchemas()).sort());
    });

    it('publishes one event schema per event type', () => {
      const types = EventMessageV1.options.map((o) => o.shape.type.value);
      expect(Object.keys(publishedSchemas()).filter((n) => n.startsWith('events/'))).to.deep.equal(
        types.map((t) => `events/${t}.schema.json`),
      );
    });

    it('GET /openapi.json serves the committed document', () => {
      expect(openApiDocument()).to.deep.equal(JSON.parse(read('docs/openapi.json')));
    });
  });

  describe('the OpenAPI document', () => {
    const document = buildOpenApiDocument() as {
      openapi: string;
      paths: Record<string, Record<string, { operationId?: string; responses: Record<string, unknown> }>>;
      components: { schemas: Record<string, object>; responses: Record<string, object> };
    };

    it('is OpenAPI 3.1 with every route of the upload function', () => {
      expect(document.openapi).to.equal('3.1.0');
      const operations = Object.entries(document.paths).flatMap(([path, item]) =>
        Object.keys(item)
          .filter((k) => k !== 'parameters')
          .map((method) => `${method.toUpperCase()} ${path}`),
      );
      expect(operations).to.include.members([
        'POST /uploads',
        'GET /uploads',
        'GET /uploads/{id}',
        'DELETE /uploads/{id}',
        'POST /uploads/signed-url',
        'GET /uploads/signed-url/{ticket}',
        'GET /healthz',
        'GET /openapi.json',
        'OPTIONS /uploads',
      ]);
    });

    it('resolves every $ref', () => {
      const refs = [...new Set(refsIn(document))];
      expect(refs.length).to.be.greaterThan(10);
      for (const ref of refs) {
        let node: unknown = document;
        for (const part of ref.replace(/^#\//, '').split('/')) node = (node as Record<string, unknown>)?.[part];
        expect(node, `${ref} resolves`).to.be.an('object');
      }
    });

    it('has a response for every error status, naming its codes', () => {
      for (const [code, { status }] of Object.entries(ERROR_CODES)) {
        const response = document.components.responses[`Error${status}`] as { description: string } | undefined;
        expect(response?.description, `${code} (${status})`).to.include(`\`${code}\``);
      }
    });

    it('gives every operation a unique operationId and at least one answer', () => {
      const ids = Object.values(document.paths).flatMap((item) =>
        Object.entries(item)
          .filter(([k]) => k !== 'parameters' && k !== 'options')
          .map(([, op]) => op.operationId),
      );
      expect(ids.every((id) => typeof id === 'string')).to.equal(true);
      expect(new Set(ids).size).to.equal(ids.length);
    });

    it('declares every {parameter} of a path template as a required path parameter, and describes every answer', () => {
      type Item = { parameters?: Array<{ name?: string; in?: string; required?: boolean }> } & Record<string, unknown>;
      for (const [path, item] of Object.entries(document.paths as Record<string, Item>)) {
        const declared = (item.parameters ?? []).filter((p) => p.in === 'path' && p.required).map((p) => p.name);
        const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
        expect(declared, path).to.deep.equal(templated);
        for (const [method, operation] of Object.entries(item)) {
          if (method === 'parameters') continue;
          const responses = (operation as { responses: Record<string, { description?: string; $ref?: string }> })
            .responses;
          for (const [status, response] of Object.entries(responses))
            expect(response.description ?? response.$ref, `${method} ${path} ${status}`).to.be.a('string');
        }
      }
    });

    it('compiles every component schema under strict Ajv (JSON Schema 2020-12)', () => {
      const contract = new Contract(document);
      for (const name of Object.keys(document.components.schemas))
        expect(() => contract.component(name), name).to.not.throw();
      expect(() => contract.compileAll(), 'every answer of every operation').to.not.throw();
    });
  });

  describe('validation can fail', () => {
    const contract = new Contract(buildOpenApiDocument());
    const processing = {
      id: ID,
      imageId: ID,
      status: 'processing',
      statusUrl: 'http://h/uploads/x',
      variants: [{ width: 320, format: 'webp', name: `${ID}/w320.webp` }],
    };

    it('accepts a well-formed answer', () => {
      expect(contract.check('POST', '/uploads', 202, processing)).to.deep.equal([]);
    });

    it('refuses an answer missing a field, with an extra field, or with a wrong type', () => {
      const { statusUrl: _, ...missing } = processing;
      expect(contract.check('POST', '/uploads', 202, missing)).to.have.length.greaterThan(0);
      expect(contract.check('POST', '/uploads', 202, { ...processing, surprise: 1 })).to.have.length.greaterThan(0);
      expect(contract.check('POST', '/uploads', 202, { ...processing, id: 'x' })).to.have.length.greaterThan(0);
    });

    it('refuses an undocumented status and an error code not in ERROR_CODES', () => {
      expect(contract.check('POST', '/uploads', 418, {})).to.have.length(1);
      const error = { error: { code: 'not_found', message: 'm', retryable: false } };
      expect(contract.check('GET', '/uploads/{id}', 404, error)).to.deep.equal([]);
      const invented = { error: { ...error.error, code: 'teapot' } };
      expect(contract.check('GET', '/uploads/{id}', 404, invented)).to.have.length.greaterThan(0);
    });

    it('checks a status documented without a body has none', () => {
      expect(contract.check('DELETE', '/uploads/{id}', 204, undefined)).to.deep.equal([]);
      expect(contract.check('DELETE', '/uploads/{id}', 204, { gone: true })).to.have.length(1);
    });
  });

  describe('event and manifest schemas', () => {
    const events: EventMessage[] = [
      {
        v: 1,
        type: 'image.ready',
        imageId: ID,
        manifest: { bucket: 'b', name: `${ID}/manifest.json` },
        variants: 6,
        at: AT,
      },
      { v: 1, type: 'image.failed', imageId: ID, code: 'corrupt_image', message: 'm', retryable: false, at: AT },
      {
        v: 1,
        type: 'image.updated',
        imageId: ID,
        manifest: { bucket: 'b', name: `${ID}/manifest.json` },
        variants: 6,
        recipe: 'abc',
        previousRecipe: 'none',
        at: AT,
      },
      { v: 1, type: 'image.deleted', imageId: ID, at: AT },
    ];

    for (const event of events) {
      it(`${event.type}: its schema accepts what EventMessageV1 accepts and refuses another type or a bad id`, () => {
        expect(EventMessageV1.parse(event)).to.deep.equal(event);
        const validate = publishedSchema(`events/${event.type}.schema.json`);
        expect(validate(event)).to.deep.equal([]);
        expect(validate({ ...event, imageId: 'nope' })).to.have.length.greaterThan(0);
        const other = events.find((e) => e.type !== event.type);
        expect(validate(other)).to.have.length.greaterThan(0);
      });
    }

    it('every published schema compiles under strict Ajv', () => {
      for (const [name, schema] of Object.entries(publishedSchemas()))
        expect(() => newAjv().compile(schema), name).to.not.throw();
    });

    it('the manifest schema refuses a manifest without variants', () => {
      const validate = publishedSchema('manifest.schema.json');
      expect(validate({ v: 1, id: ID, formats: [], createdAt: AT })).to.have.length.greaterThan(0);
    });
  });
});
