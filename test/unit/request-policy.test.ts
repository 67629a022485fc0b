import { expect } from 'chai';
import { corsFor, isAuthorized } from '../../shared/request-policy.js';

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
    ['no token configured', undefined, undefined, true],
    ['the right token', `Bearer ${token}`, token, true],
    ['lower-case scheme', `bearer ${token}`, token, true],
    ['a wrong token', 'Bearer a-very-long-secret-tokem', token, false],
    ['a prefix of the token', 'Bearer a-very', token, false],
    ['no header', undefined, token, false],
    ['an empty bearer', 'Bearer ', token, false],
    ['basic auth', `Basic ${token}`, token, false],
  ];
  for (const [what, header, configured, expected] of auth) {
    it(`auth: ${what}`, () => expect(isAuthorized(header, configured)).to.equal(expected));
  }
});
