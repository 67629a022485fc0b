/**
 * Hostile inputs: answers functions-framework (Express, body-parser) would give before the handler
 * runs are JSON without a stack trace.
 *
 * Split from the former hostile.test.ts; each hostile-*.test.ts file starts its own pipeline
 * (test/fixtures/hostile.ts) and runs alone or with the others in any order.
 */
import { expect } from 'chai';
import { hostileSuite } from '../fixtures/hostile.js';

describe("hostile inputs: functions-framework's own answers (before the handler runs)", function () {
  this.timeout(120_000);
  const h = hostileSuite();
  const { rows, auth, api, expectSafeError } = h;

  it('a malformed JSON body (Content-Type: application/json) is answered with JSON, without a stack trace', async () => {
    // Without the guard body-parser fails before the handler and Express renders an HTML page
    // with the stack; the guard hands every non-multipart body to the raw parser instead.
    const response = await api()
      .post('/uploads')
      .set(auth)
      .set('Content-Type', 'application/json')
      .send('{"not": json');
    expect(response.status).to.equal(415);
    expect(response.body.error.code).to.equal('not_an_image');
    expect(response.type).to.equal('application/json');
    expect(response.text).not.to.match(/node_modules|\bat /);
  });
  for (const path of ['/uploads/%E0%A4%A', '/%', '/uploads/%ZZ']) {
    it(`a path with broken percent-encoding (GET ${path}) is answered 400 bad_request as JSON, without a stack trace`, async () => {
      // Express's router fails to decode the path before the handler runs (URIError) and renders
      // its HTML error page, with the stack and node_modules paths unless NODE_ENV=production.
      const response = await api().get(path).set(auth);
      expectSafeError(response, 400, 'bad_request');
      expect(response.text).not.to.match(/URIError|node_modules|\bat /);
      rows.push({
        case: `path with broken percent-encoding ${path}`,
        path: 'GET',
        status: '400',
        code: 'bad_request',
        outcome: 'JSON, no stack trace',
      });
    });
  }
  it('a body with a broken Content-Encoding is answered with JSON, without a stack trace', async () => {
    const response = await api()
      .post('/uploads')
      .set(auth)
      .set('Content-Type', 'image/jpeg')
      .set('Content-Encoding', 'gzip')
      .send(Buffer.from('not gzip'));
    expect(response.status).to.equal(415);
    expect(response.body.error.code).to.equal('unsupported_encoding');
    expect(response.type).to.equal('application/json');
    expect(response.text).not.to.match(/node_modules|\bat /);
  });
});
