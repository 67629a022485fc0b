/**
 * The storage server's V4 signed-URL check (local/storage-server/signatures.ts) on its own: URLs
 * signed offline by @google-cloud/storage's own signer (a throwaway key in place of IAM signBlob),
 * then verified against requests built here, at a clock the test chooses. The HTTP side (bodies,
 * CORS, storing) is test/integration/storage-server-signatures.test.ts.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Storage } from '@google-cloud/storage';
import { expect } from 'chai';
import { generateSigningKey } from '../../local/signing-key.js';
import { SignedUrlPolicy, verifySignedRequest } from '../../local/storage-server/signatures.js';
import { XmlApiError } from '../../local/storage-server/xml-errors.js';

const ENDPOINT = 'http://127.0.0.1:4443';
const key = generateSigningKey('unit-project');
const storage = new Storage({
  apiEndpoint: ENDPOINT,
  projectId: 'unit-project',
  useAuthWithCustomEndpoint: false,
  credentials: { client_email: key.clientEmail, private_key: key.privateKey },
});

function trusting(): SignedUrlPolicy {
  const policy = new SignedUrlPolicy();
  policy.addKey(key.clientEmail, key.publicKey);
  return policy;
}

/** A V4 PUT URL for `name` in bucket `b`, signed for `image/jpeg`, valid ten minutes from `signedAt`. */
async function signedUrl(name: string, signedAt = Date.now()): Promise<URL> {
  const [url] = await storage
    .bucket('b')
    .file(name)
    .getSignedUrl({ version: 'v4', action: 'write', expires: signedAt + 10 * 60 * 1000, contentType: 'image/jpeg' });
  return new URL(url);
}

/** What the server sees of a PUT to `url` (path and query as sent, Host with its port). */
function request(url: URL, headers: IncomingHttpHeaders = {}, method = 'PUT') {
  return {
    req: { method, headers: { host: url.host, 'content-type': 'image/jpeg', ...headers } },
    url: new URL(`${url.pathname}${url.search}`, 'http://localhost'),
  };
}

/** The XmlApiError `fn` throws; fails the test otherwise. */
function refusal(fn: () => unknown): XmlApiError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(XmlApiError);
    return error as XmlApiError;
  }
  expect.fail('expected an XmlApiError');
}

/** `url` with query parameter `name` set to `value` (or removed when undefined). */
function withParam(url: URL, name: string, value: string | undefined): URL {
  const changed = new URL(url);
  if (value === undefined) changed.searchParams.delete(name);
  else changed.searchParams.set(name, value);
  return changed;
}

describe('storage server V4 signature verification', () => {
  it('accepts a URL signed by @google-cloud/storage, comparing Host without its port', async () => {
    const url = await signedUrl('photo.jpg');
    const verified = verifySignedRequest(request(url), trusting());
    expect(verified.clientEmail).to.equal(key.clientEmail);
    expect(verified.expiresAt.getTime()).to.be.greaterThan(Date.now());
  });

  it('accepts any valid percent-encoding of the signed object name', async () => {
    const url = await signedUrl('photo (1).jpg');
    expect(url.pathname).to.equal('/b/photo%20%281%29.jpg');
    const differentlyEncoded = new URL(url);
    differentlyEncoded.pathname = '/b/photo%20(1).jpg';
    expect(() => verifySignedRequest(request(differentlyEncoded), trusting())).not.to.throw();
  });

  it('refuses a tampered signature, a changed signed header, another name or method: 403 SignatureDoesNotMatch', async () => {
    const url = await signedUrl('photo.jpg');
    const signature = url.searchParams.get('X-Goog-Signature') ?? '';
    const flipped = `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`;
    const renamed = new URL(url);
    renamed.pathname = '/b/other.jpg';
    const attempts = [
      request(withParam(url, 'X-Goog-Signature', flipped)),
      request(url, { 'content-type': 'image/png' }),
      request(renamed),
      request(url, {}, 'GET'),
    ];
    for (const attempt of attempts) {
      const error = refusal(() => verifySignedRequest(attempt, trusting()));
      expect(error).to.include({ status: 403, code: 'SignatureDoesNotMatch' });
      expect(error.extra.StringToSign).to.match(/^GOOG4-RSA-SHA256\n/);
    }
  });

  it('refuses an expired URL (400 ExpiredToken) and one not yet valid (400)', async () => {
    const url = await signedUrl('photo.jpg');
    const expired = refusal(() => verifySignedRequest(request(url), trusting(), new Date(Date.now() + 11 * 60 * 1000)));
    expect(expired).to.include({ status: 400, code: 'ExpiredToken' });
    const early = refusal(() => verifySignedRequest(request(url), trusting(), new Date(Date.now() - 60 * 60 * 1000)));
    expect(early).to.include({ status: 400, code: 'InvalidArgument' });
    expect(early.details).to.contain('not yet valid');
  });

  it('refuses an unsigned request and a key it does not trust: 403 AccessDenied', async () => {
    const url = await signedUrl('photo.jpg');
    const unsigned = new URL(url);
    unsigned.search = '';
    expect(refusal(() => verifySignedRequest(request(unsigned), trusting()))).to.include({
      status: 403,
      code: 'AccessDenied',
    });
    expect(refusal(() => verifySignedRequest(request(url), new SignedUrlPolicy()))).to.include({
      status: 403,
      code: 'AccessDenied',
    });
  });

  it('refuses malformed parameters with a 400 saying which', async () => {
    const url = await signedUrl('photo.jpg');
    const date = url.searchParams.get('X-Goog-Date') ?? '';
    const credential = url.searchParams.get('X-Goog-Credential') ?? '';
    const cases: [string, URL, string, string][] = [
      ['a missing X-Goog-Date', withParam(url, 'X-Goog-Date', undefined), 'InvalidArgument', 'X-Goog-Date'],
      [
        'another algorithm',
        withParam(url, 'X-Goog-Algorithm', 'GOOG4-HMAC-SHA256'),
        'InvalidArgument',
        'GOOG4-HMAC-SHA256',
      ],
      [
        'X-Goog-Expires over 7 days',
        withParam(url, 'X-Goog-Expires', String(7 * 24 * 3600 + 1)),
        'InvalidArgument',
        'X-Goog-Expires',
      ],
      [
        'a date that is not YYYYMMDDTHHMMSSZ',
        withParam(url, 'X-Goog-Date', date.slice(0, 8)),
        'InvalidArgument',
        'X-Goog-Date',
      ],
      // Month 13 is refused, not rolled over into next January.
      [
        'month 13',
        withParam(
          withParam(url, 'X-Goog-Date', `${date.slice(0, 4)}13${date.slice(6)}`),
          'X-Goog-Credential',
          credential.replace(`/${date.slice(0, 8)}/`, `/${date.slice(0, 4)}13${date.slice(6, 8)}/`),
        ),
        'InvalidArgument',
        'X-Goog-Date',
      ],
      [
        'a credential of another day',
        withParam(url, 'X-Goog-Credential', credential.replace(`/${date.slice(0, 8)}/`, '/20000101/')),
        'AuthorizationQueryParametersError',
        'X-Goog-Credential',
      ],
      [
        'signed headers without host',
        withParam(url, 'X-Goog-SignedHeaders', 'content-type'),
        'AuthorizationQueryParametersError',
        'host',
      ],
    ];
    for (const [title, changed, code, mentions] of cases) {
      const error = refusal(() => verifySignedRequest(request(changed), trusting()));
      expect(error.status, title).to.equal(400);
      expect(error.code, title).to.equal(code);
      expect(error.details, title).to.contain(mentions);
    }
  });

  it('renders refusals as the XML API does, escaped, without absent fields', () => {
    const xml = new XmlApiError(403, 'AccessDenied', 'Access <denied> & "refused"', undefined, {
      StringToSign: "a'b",
    }).toXml();
    expect(xml).to.equal(
      "<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code><Message>Access &lt;denied&gt; &amp; &quot;refused&quot;</Message><StringToSign>a&apos;b</StringToSign></Error>",
    );
  });
});
