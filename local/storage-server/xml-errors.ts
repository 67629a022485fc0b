/**
 * Errors in the XML API's shape (`<Error><Code>…</Code><Message>…</Message></Error>`), which is
 * how Cloud Storage answers requests on `https://storage.googleapis.com/{bucket}/{object}`, signed
 * URLs among them. JSON API errors are in api-errors.ts.
 */

/** A refusal in the XML API's shape. */
export class XmlApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: string,
    readonly extra: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'XmlApiError';
  }

  toXml(): string {
    const fields: Record<string, string | undefined> = {
      Code: this.code,
      Message: this.message,
      Details: this.details,
      ...this.extra,
    };
    const body = Object.entries(fields)
      .flatMap(([k, v]) => (v === undefined ? [] : [`<${k}>${escapeXml(v)}</${k}>`]))
      .join('');
    return `<?xml version='1.0' encoding='UTF-8'?><Error>${body}</Error>`;
  }
}

const XML_ESCAPES: Readonly<Record<string, string>> = {
  '<': '&lt;',
  '>': '&gt;',
  '&': '&amp;',
  "'": '&apos;',
  '"': '&quot;',
};

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => XML_ESCAPES[c] ?? c);
}
