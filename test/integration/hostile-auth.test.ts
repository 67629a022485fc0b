/**
 * Hostile inputs: who may call `POST /uploads` (UPLOAD_TOKEN and CORS_ORIGINS set).
 *
 * Split from the former hostile.test.ts; each hostile-*.test.ts file starts its own pipeline
 * (test/fixtures/hostile.ts) and runs alone or with the others in any order.
 */
import { expect } from 'chai';
import type request from 'supertest';
import type { ErrorCode } from '../../shared/core/errors.js';
import { hostileSuite, TOKEN, validPhoto } from '../fixtures/hostile.js';

describe('hostile inputs: who may call', function () {
  this.timeout(120_000);
  const h = hostileSuite();
  const { rows, auth, api, snapshot, expectSafeError } = h;

  const cases: Array<[string, (photo: Buffer) => request.Test, number, ErrorCode, string?]> = [
    [
      'no token',
      (photo) => api().post('/uploads').set('Content-Type', 'image/jpeg').send(photo),
      401,
      'unauthorized',
      'missing',
    ],
    [
      'a wrong token',
      (photo) =>
        api()
          .post('/uploads')
          .set('Authorization', `Bearer ${TOKEN.slice(0, -1)}x`)
          .set('Content-Type', 'image/jpeg')
          .send(photo),
      401,
      'unauthorized',
      'wrong_token',
    ],
    [
      'the token as a prefix',
      (photo) =>
        api().post('/uploads').set('Authorization', `Bearer ${TOKEN}x`).set('Content-Type', 'image/jpeg').send(photo),
      401,
      'unauthorized',
      'wrong_token',
    ],
    [
      'the token in the query string',
      (photo) => api().post(`/uploads?access_token=${TOKEN}`).set('Content-Type', 'image/jpeg').send(photo),
      401,
      'unauthorized',
      'missing',
    ],
    [
      'Basic instead of Bearer',
      (photo) =>
        api().post('/uploads').set('Authorization', `Basic ${TOKEN}`).set('Content-Type', 'image/jpeg').send(photo),
      401,
      'unauthorized',
      'malformed',
    ],
    [
      'an unlisted Origin with the right token',
      (photo) =>
        api()
          .post('/uploads')
          .set(auth)
          .set('Origin', 'https://evil.example')
          .set('Content-Type', 'image/jpeg')
          .send(photo),
      403,
      'forbidden_origin',
    ],
    [
      'Origin: null (sandboxed iframe, file://)',
      (photo) => api().post('/uploads').set(auth).set('Origin', 'null').set('Content-Type', 'image/jpeg').send(photo),
      403,
      'forbidden_origin',
    ],
    [
      'a look-alike Origin',
      (photo) =>
        api()
          .post('/uploads')
          .set(auth)
          .set('Origin', 'https://app.example.evil.example')
          .set('Content-Type', 'image/jpeg')
          .send(photo),
      403,
      'forbidden_origin',
    ],
  ];
  cases.forEach(([what, make, status, code, reason], index) => {
    it(`${what}: ${status} ${code}${reason ? ` (${reason})` : ''}, nothing stored, no CORS headers`, async () => {
      const photo = await validPhoto(900 + index);
      const before = await snapshot();
      const response = await make(photo);
      expectSafeError(response, status, code);
      expect(response.body.error.details?.reason).to.equal(reason);
      expect(response.headers['access-control-allow-origin']).to.equal(undefined);
      expect(await snapshot()).to.deep.equal(before);
      rows.push({ case: `caller: ${what}`, path: 'raw', status: String(status), code, outcome: 'nothing stored' });
    });
  });

  it('the configured origin with the token: 202 and CORS headers for that origin only', async () => {
    const response = await api()
      .post('/uploads')
      .set(auth)
      .set('Origin', 'https://app.example')
      .set('Content-Type', 'image/jpeg')
      .send(await validPhoto(950));
    expect(response.status).to.equal(202);
    expect(response.headers['access-control-allow-origin']).to.equal('https://app.example');
    expect(response.headers.vary).to.match(/Origin/);
  });
});
