import { expect } from 'chai';
import { corsFor, isAuthorized, routePath, screenRequest, type RequestHead } from '../../shared/http/request-policy.js';

describe('request policy', () => {
  const cors: Array<[string, string | undefined, string[], boolean, string | undefined]> = [
    ['no Origin (curl)', undefined, [], true, undefined],
    ['a listed origin', 'https://app.example', ['https://app.example'], true, 'https://app.example'],
    ['an unlisted origin', 'https://evil.example', ['https://app.example'], false, undefined],
    ['any origin with *', 'https://any.example', ['*'], true, '*'],
    ['an origin when none are configured', 'https://app.example', [], false, undefined],
  ];
  for (const [what, origin, allowed, ok, header] of cors) {
    it(`CORS: ${what}`, () => {
      const verdict = corsFor(origin, allowed);
      expect(verdict.allowed).to.equal(ok);
      if (verdict.allowed) expect(verdict.headers['Access-Control-Allow-Origin']).to.equal(header);
    });
  }

  const token = 'a-very-long-secret-token';
  const auth: Array<[string, string | undefined, string | undefined, boolean]> = [
    ['authentication off (UPLOAD_AUTH=none)', undefined, undefined, true],
    ['the right token', `Bearer ${token}`, token, true],
    ['lower-case scheme', `bearer ${token}`, token, true],
    ['a wrong token', 'Bearer a-very-long-secret-tokem', token, false],
    ['a prefix of the token', 'Bearer a-very', token, false],
    ['no header', undefined, token, false],
    ['an empty bearer', 'Bearer ', token, false],
    ['basic auth', `Basic ${token}`, token, false],
  ];
  for (const [what, header, configured, expected] of auth) {
    it(`auth: ${what}`, () =>
      expect(
        isAuthorized(header, configured === undefined ? { mode: 'none' } : { mode: 'token', token: configured }),
      ).to.equal(expected));
  }

  const token16 = { mode: 'token', token: token } as const;
  const screening: Array<[string, RequestHead, number | undefined]> = [
    [
      'a bad origin, before the token',
      { method: 'POST', path: '/uploads', origin: 'https://evil.example', authorization: `Bearer ${token}` },
      403,
    ],
    [
      'a bad origin on /healthz too',
      { method: 'GET', path: '/healthz', origin: 'https://evil.example', authorization: undefined },
      403,
    ],
    [
      'no token on POST /uploads',
      { method: 'POST', path: '/uploads', origin: 'https://app.example', authorization: undefined },
      401,
    ],
    [
      'no token on GET /uploads/{id}',
      { method: 'GET', path: '/uploads/abc', origin: undefined, authorization: undefined },
      401,
    ],
    [
      'no token on an unknown path (no 404 hint)',
      { method: 'GET', path: '/admin', origin: undefined, authorization: undefined },
      401,
    ],
    [
      'no token on the CORS preflight',
      { method: 'OPTIONS', path: '/uploads', origin: 'https://app.example', authorization: undefined },
      undefined,
    ],
    [
      'no token on /healthz',
      { method: 'GET', path: '/healthz', origin: undefined, authorization: undefined },
      undefined,
    ],
    [
      'the token on POST /uploads',
      { method: 'POST', path: '/uploads', origin: 'https://app.example', authorization: `Bearer ${token}` },
      undefined,
    ],
  ];
  for (const [what, head, status] of screening) {
    it(`screening the head: ${what} → ${status ?? 'admitted'}`, () => {
      const verdict = screenRequest(head, ['https://app.example'], token16);
      expect(verdict.error?.status).to.equal(status);
      if (head.origin === 'https://app.example')
        expect(verdict.headers['Access-Control-Allow-Origin']).to.equal('https://app.example');
    });
  }

  it('routes paths without query and trailing slashes', () => {
    expect([routePath('/uploads/?x=1'), routePath('/'), routePath('//'), routePath('/healthz')]).to.deep.equal([
      '/uploads',
      '/',
      '/',
      '/healthz',
    ]);
  });
});
