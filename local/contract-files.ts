/**
 * The contract files `npm run docs` writes whole: docs/openapi.json (what `GET /openapi.json`
 * serves) and the JSON Schemas under docs/schemas/, all from shared/http/openapi.ts. Formatted
 * here (two spaces, final newline) and kept out of biome, so the drift test compares bytes.
 */
import { buildOpenApiDocument, publishedSchemas } from '../shared/http/openapi.js';

/** A generated file: its path from the repository root and its text. */
export interface ContractFile {
  readonly file: string;
  readonly text: string;
}

const text = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** Every contract file, the OpenAPI document first. */
export function contractFiles(): ContractFile[] {
  return [
    { file: 'docs/openapi.json', text: text(buildOpenApiDocument()) },
    ...Object.entries(publishedSchemas()).map(([name, schema]) => ({
      file: `docs/schemas/${name}`,
      text: text(schema),
    })),
  ];
}
