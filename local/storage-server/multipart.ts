/**
 * A parser for the `multipart/related` bodies of `uploadType=multipart`: a JSON metadata part
 * and a media part. Clients differ in the details, so it accepts CRLF or bare LF line endings,
 * boundaries bare or in double or single quotes (gcloud), extra part headers (`MIME-Version`,
 * `Content-Transfer-Encoding`), a preamble, and a missing final CRLF.
 */
import { badRequest } from './api-errors.js';

/** One part: lower-cased headers and the raw body. */
export interface MultipartPart {
  headers: Record<string, string>;
  body: Buffer;
}

/** The boundary of a `multipart/related` Content-Type, or a 400. */
export function boundaryOf(contentType: string | undefined): string {
  if (!contentType || !/^multipart\/related\b/i.test(contentType.trim())) {
    throw badRequest(`Multipart uploads need Content-Type multipart/related, got ${JSON.stringify(contentType ?? '')}`);
  }
  // Python's email package (gcloud) quotes with single quotes; others use double or none.
  const match = /;\s*boundary=(?:"([^"]+)"|'([^']+)'|([^;\s]+))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2] ?? match?.[3];
  if (!boundary) throw badRequest('Multipart Content-Type has no boundary');
  return boundary;
}

function parseHeaders(block: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of block.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw badRequest(`Malformed multipart part header: ${JSON.stringify(line.slice(0, 100))}`);
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** Splits a multipart body into its parts; 400 for anything that is not well formed. */
export function parseMultipart(body: Buffer, boundary: string): MultipartPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  // The first delimiter may open the body; later ones always follow a line break.
  let at = body.subarray(0, delimiter.length).equals(delimiter) ? 0 : body.indexOf(Buffer.from(`\n--${boundary}`));
  if (at < 0) throw badRequest('Multipart body does not contain its boundary');
  if (at > 0) at += 1;
  const parts: MultipartPart[] = [];
  for (;;) {
    let cursor = at + delimiter.length;
    if (body[cursor] === 0x2d && body[cursor + 1] === 0x2d) break; // "--": the closing delimiter
    // Transport padding, then the line break that ends the delimiter line.
    while (body[cursor] === 0x20 || body[cursor] === 0x09) cursor++;
    if (body[cursor] === 0x0d) cursor++;
    if (body[cursor] !== 0x0a) throw badRequest('Malformed multipart body: no line break after the boundary');
    cursor++;
    const next = body.indexOf(Buffer.from(`\n--${boundary}`), cursor - 1);
    if (next < 0) throw badRequest('Malformed multipart body: missing closing boundary');
    let end = next;
    if (end > cursor && body[end - 1] === 0x0d) end--;
    const content = body.subarray(cursor, Math.max(cursor, end));
    parts.push(splitPart(content));
    at = next + 1;
  }
  if (parts.length === 0) throw badRequest('Multipart body has no parts');
  return parts;
}

function splitPart(content: Buffer): MultipartPart {
  // Headers end at the first empty line; a part may also start with it (no headers at all).
  let headerEnd: number;
  let bodyStart: number;
  if (content[0] === 0x0a) [headerEnd, bodyStart] = [0, 1];
  else if (content[0] === 0x0d && content[1] === 0x0a) [headerEnd, bodyStart] = [0, 2];
  else {
    const crlf = content.indexOf('\r\n\r\n');
    const lf = content.indexOf('\n\n');
    if (crlf < 0 && lf < 0) throw badRequest('Malformed multipart part: no blank line after its headers');
    if (lf >= 0 && (crlf < 0 || lf < crlf)) [headerEnd, bodyStart] = [lf, lf + 2];
    else [headerEnd, bodyStart] = [crlf, crlf + 4];
  }
  const headers = parseHeaders(content.subarray(0, headerEnd).toString('utf8'));
  let body = content.subarray(bodyStart);
  const encoding = headers['content-transfer-encoding']?.toLowerCase();
  if (encoding === 'base64') body = Buffer.from(body.toString('ascii').replace(/\s+/g, ''), 'base64');
  else if (encoding !== undefined && !['binary', '8bit', '7bit'].includes(encoding)) {
    throw badRequest(`Unsupported Content-Transfer-Encoding ${JSON.stringify(encoding)}`);
  }
  return { headers, body };
}
