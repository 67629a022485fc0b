import { expect } from 'chai';
import { corsFor, routePath, screenRequest, type RequestHead } from '../../shared/http/request-policy.js';

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

  const screening: Array<[string, RequestHead, number | undefined, boolean]> = [
    ['a bad origin', { method: 'POST', path: '/uploads', origin: 'https://evil.example' }, 403, false],
    ['a bad origin on /healthz too', { method: 'GET', path: '/healthz', origin: 'https://evil.example' }, 403, true],
    ['POST /uploads', { method: 'POST', path: '/uploads', origin: 'https://app.example' }, undefined, false],
    ['GET /uploads/{id}', { method: 'GET', path: '/uploads/abc', origin: undefined }, undefined, false],
    ['an unknown path (no 404 hint)', { method: 'GET', path: '/admin', origin: undefined }, undefined, false],
    ['the CORS preflight', { method: 'OPTIONS', path: '/uploads', origin: 'https://app.example' }, undefined, true],
    ['/healthz', { method: 'GET', path: '/healthz', origin: undefined }, undefined, true],
    ['/openapi.json (the contract)', { method: 'GET', path: '/openapi.json', origin: undefined }, undefined, true],
    [
      'a bad origin on /openapi.json too',
      { method: 'GET', path: '/openapi.json', origin: 'https://evil.example' },
      403,
      true,
    ],
  ];
  for (const [what, head, status, open] of screening) {
    it(`screening the head: ${what} → ${status ?? 'admitted'}, ${open ? 'open' : 'needs a credential'}`, () => {
      const verdict = screenRequest(head, ['https://app.example']);
      expect(verdict.error?.status).to.equal(status);
      expect(verdict.open).to.equal(open);
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
