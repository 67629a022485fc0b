/**
 * Extracting the image from an upload request: `multipart/form-data` with one `file` field and
 * an optional `metadata` field (parsed with busboy), or the raw body of any other content type.
 * The content type decides only how to unwrap the bytes; what the bytes are is sniffed later
 * from the bytes themselves.
 */
import busboy from 'busboy';
import { permanent } from '../core/errors.js';
import { METADATA_FIELDS, METADATA_MAX_BYTES } from '../core/metadata.js';
import { sanitizeFilename } from '../core/naming.js';

/** The file found in a request. */
export interface UploadedFile {
  readonly bytes: Buffer;
  /** Sanitised client file name, if any. */
  readonly filename: string | undefined;
  /** The form's `metadata` field, as sent (JSON text, checked by core/metadata.ts). */
  readonly metadataText?: string | undefined;
}

/** Room for multipart boundaries and part headers on top of the file's own limit. */
export const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

/** The form field that carries the image. */
export const FILE_FIELD = 'file';

function tooLarge(maxBytes: number): Error {
  return permanent('payload_too_large', `The file is larger than the limit of ${maxBytes} bytes.`, { maxBytes });
}

/**
 * Parses a multipart body already in memory (functions-framework buffers it as `rawBody`).
 * Errors: `bad_multipart` (no or bad boundary, truncated body), `missing_file` (no `file` field),
 * `too_many_files` (more than one file), `payload_too_large`.
 */
export function parseMultipart(body: Buffer, contentType: string, maxBytes: number): Promise<UploadedFile> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: { 'content-type': contentType },
        // Twice the metadata's limit, so that a too-long field is read whole and refused by its checker.
        limits: { files: 2, fileSize: maxBytes, fields: 20, parts: 40, fieldSize: 2 * METADATA_MAX_BYTES + 1 },
      });
    } catch {
      reject(permanent('bad_multipart', 'The multipart body has no valid boundary.'));
      return;
    }
    let found: UploadedFile | undefined;
    let metadataText: string | undefined;
    let failure: Error | undefined;
    let otherFiles = 0;
    let pending = 0;
    let finished = false;
    const settle = () => {
      if (!finished || pending > 0) return;
      if (failure) reject(failure);
      else if (!found) reject(permanent('missing_file', `The form has no "${FILE_FIELD}" field with a file.`));
      else if (otherFiles > 0)
        reject(permanent('too_many_files', `Send exactly one file in the "${FILE_FIELD}" field.`));
      else resolve(metadataText === undefined ? found : { ...found, metadataText });
    };
    parser.on('field', (field, value, info) => {
      if (field !== METADATA_FIELDS.formField) return;
      if (metadataText !== undefined)
        failure ??= permanent('invalid_metadata', 'Send the "metadata" field once.', { where: 'form field' });
      else if (info.valueTruncated)
        failure ??= permanent(
          'invalid_metadata',
          `The metadata (form field) is longer than ${METADATA_MAX_BYTES} bytes.`,
          {
            where: 'form field',
          },
        );
      metadataText = value;
    });
    parser.on('file', (field, stream, info) => {
      if (field !== FILE_FIELD || pending > 0 || found) {
        otherFiles++;
        stream.on('error', () => undefined); // the parser's own 'error' reports a cut-off body
        stream.resume();
        return;
      }
      pending++;
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('limit', () => {
        failure ??= tooLarge(maxBytes);
      });
      // A body cut off inside the file part makes busboy destroy the file stream with "Unexpected
      // end of form"; unheard, that error escapes as an uncaught exception (500, stack in the log).
      stream.on('error', () => {
        failure ??= permanent('bad_multipart', 'The multipart body is malformed.');
      });
      stream.on('close', () => {
        pending--;
        if (!failure) found = { bytes: Buffer.concat(chunks), filename: sanitizeFilename(info.filename) };
        settle();
      });
    });
    parser.on('filesLimit', () => {
      otherFiles++;
    });
    parser.on('error', () => {
      failure ??= permanent('bad_multipart', 'The multipart body is malformed.');
      finished = true;
      settle();
    });
    parser.on('close', () => {
      finished = true;
      settle();
    });
    parser.end(body);
  });
}

/**
 * The uploaded file of a request: multipart when the content type says so, otherwise the raw
 * body (with the file name from `?filename=` if given).
 */
export async function extractUpload(
  body: Buffer,
  contentType: string | undefined,
  maxBytes: number,
  filenameHint?: string,
): Promise<UploadedFile> {
  if (
    body.length > maxBytes + MULTIPART_OVERHEAD_BYTES ||
    (!/^multipart\//i.test(contentType ?? '') && body.length > maxBytes)
  ) {
    throw tooLarge(maxBytes);
  }
  if (contentType !== undefined && /^multipart\/form-data/i.test(contentType))
    return parseMultipart(body, contentType, maxBytes);
  if (/^multipart\//i.test(contentType ?? ''))
    throw permanent('bad_multipart', 'Use multipart/form-data for form uploads.');
  return { bytes: body, filename: sanitizeFilename(filenameHint) };
}
