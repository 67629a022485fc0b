/**
 * Hostile inputs: SVG when a deployment turns it on (ALLOW_SVG=true): entities still refused.
 *
 * Split from the former hostile.test.ts; each hostile-*.test.ts file starts its own pipeline
 * (test/fixtures/hostile.ts) and runs alone or with the others in any order.
 */
import { expect } from 'chai';
import { useDeps } from '../../functions/runtime.js';
import type { Config } from '../../shared/core/config.js';
import { createDeps, type PipelineDeps } from '../../shared/cloud/deps.js';
import { hostileSuite } from '../fixtures/hostile.js';
import { billionLaughsSvg, simpleSvg, svgWithEntities } from '../fixtures/images.js';

describe('hostile inputs: SVG when a deployment turns it on (ALLOW_SVG=true)', function () {
  this.timeout(120_000);
  const h = hostileSuite();
  const { rows, snapshot, expectSafeError, send } = h;

  let svgDeps: PipelineDeps;
  before(() => {
    svgDeps = createDeps({ ...h.pipeline.config, ALLOW_SVG: true } as Config, {
      storage: h.pipeline.deps.storage,
      pubsub: h.pipeline.deps.pubsub,
      log: h.pipeline.deps.log,
    });
    useDeps(svgDeps);
  });
  after(() => useDeps(h.pipeline.deps));

  it('a plain SVG is accepted (202)', async () => {
    const response = await send('raw', simpleSvg(301, 201), 'image/svg+xml');
    expect(response.status, JSON.stringify(response.body)).to.equal(202);
    rows.push({ case: 'plain SVG with ALLOW_SVG=true', path: 'raw', status: '202', code: '—', outcome: 'accepted' });
  });
  for (const [what, make] of [
    ['an SVG with an external entity (XXE)', svgWithEntities],
    ['a billion-laughs SVG', billionLaughsSvg],
  ] as const) {
    it(`${what} is still refused: 415 format_not_allowed, nothing stored`, async () => {
      const before = await snapshot();
      const response = await send('multipart', make(), 'image/svg+xml');
      expectSafeError(response, 415, 'format_not_allowed');
      expect(response.body.error.message).to.match(/entities/);
      expect(await snapshot()).to.deep.equal(before);
      rows.push({
        case: `${what} with ALLOW_SVG=true`,
        path: 'multipart',
        status: '415',
        code: 'format_not_allowed',
        outcome: 'nothing stored',
      });
    });
  }
});
