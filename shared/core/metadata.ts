/**
 * Per-upload metadata: an app's own JSON object (its post, product or profile ids) that travels
 * with an upload to its asset, the status answers and the upload's events. Limits and where each
 * upload path carries it: docs/api.md, "Metadata".
 */
import { z } from 'zod';
import { permanent, type PipelineError } from './errors.js';

/** The most bytes the metadata may take as JSON text (UTF-8). */
export const METADATA_MAX_BYTES = 4096;
/** The most keys the metadata may have. */
export const METADATA_MAX_KEYS = 32;
/** The longest key, in characters. */
export const METADATA_MAX_KEY_LENGTH = 128;

/** Where each upload path carries the metadata, as JSON text (`POST /uploads/signed-url`: its body's `metadata`). */
export const METADATA_FIELDS = {
  /** The multipart form field of `POST /uploads`. */
  formField: 'metadata',
  /** The header of a raw-body `POST /uploads` (non-ASCII characters written as JSON `\u` escapes). */
  header: 'x-upload-metadata',
  /** The query parameter of a raw-body `POST /uploads`, instead of the header. */
  query: 'metadata',
  /** The custom metadata key of an `incoming/` object. */
  objectKey: 'metadata',
} as const;

const MetadataValue = z.union([z.string(), z.number(), z.boolean()]);

/**
 * The metadata's schema. Keys of the form `__x__` are refused because Firestore reserves them.
 * The size limit is checked on the JSON text too, before parsing (parseMetadataText).
 */
export const UploadMetadata = z
  .record(
    z
      .string()
      .min(1, 'keys must not be empty')
      .max(METADATA_MAX_KEY_LENGTH, `keys must have at most ${METADATA_MAX_KEY_LENGTH} characters`)
      .regex(/^(?!__.*__$)/, 'keys of the form __name__ are reserved by Firestore'),
    MetadataValue,
  )
  .refine((value) => Object.keys(value).length <= METADATA_MAX_KEYS, `at most ${METADATA_MAX_KEYS} keys`)
  .refine(
    (value) => Buffer.byteLength(JSON.stringify(value)) <= METADATA_MAX_BYTES,
    `at most ${METADATA_MAX_BYTES} bytes as JSON`,
  )
  .meta({ maxProperties: METADATA_MAX_KEYS })
  .describe(
    `The app's own facts about an upload, returned as given: a JSON object of at most ${METADATA_MAX_KEYS} keys with string, number or boolean values, at most ${METADATA_MAX_BYTES} bytes as JSON.`,
  );
/** Per-upload metadata. */
export type UploadMetadata = z.infer<typeof UploadMetadata>;

function invalid(where: string, what: string): PipelineError {
  return permanent('invalid_metadata', `The metadata (${where}) ${what}.`, { where });
}

/** Checks a parsed value; throws `invalid_metadata` naming `where` it came from and what is wrong. */
export function parseMetadata(value: unknown, where: string): UploadMetadata {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid(where, 'must be a JSON object, like {"postId": "p1"}');
  const parsed = UploadMetadata.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const key = issue?.path.length ? ` at "${issue.path.join('.')}"` : '';
  // A bad key reports its own check's message among the issue's `issues`.
  const keyIssue = issue?.code === 'invalid_key' ? issue.issues[0]?.message : undefined;
  const message =
    issue?.code === 'invalid_union'
      ? 'values must be strings, numbers or booleans'
      : (keyIssue ?? issue?.message ?? 'is invalid');
  throw invalid(where, `is invalid${key}: ${message}`);
}

/** Parses metadata given as JSON text (form field, header, query parameter, object metadata). */
export function parseMetadataText(text: string, where: string): UploadMetadata {
  if (Buffer.byteLength(text) > METADATA_MAX_BYTES * 2)
    throw invalid(where, `is ${Buffer.byteLength(text)} bytes of text; at most ${METADATA_MAX_BYTES} as JSON`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw invalid(where, 'is not JSON text');
  }
  return parseMetadata(json, where);
}
