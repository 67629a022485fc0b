/**
 * sharp allocation failures are the instance's trouble, not the image's: they must be transient
 * (retried, then a retryable record), never `corrupt_image`.
 */
import { expect } from 'chai';
import sharp from 'sharp';
import sinon from 'sinon';
import { PipelineError } from '../../shared/core/errors.js';
import { renderVariants, type RenderOptions } from '../../shared/image/render.js';
import { makePhoto } from '../fixtures/images.js';
import { FAST_RENDER_OPTIONS } from '../helpers.js';

const options: RenderOptions = FAST_RENDER_OPTIONS;

let photo: Buffer;

async function renderError(): Promise<unknown> {
  return renderVariants(photo, [{ width: 96, format: 'jpeg' }], options, async () => undefined).then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('render: allocation failures', () => {
  before(async () => (photo = await makePhoto({ width: 200, height: 150, seed: 91 })));
  afterEach(() => sinon.restore());

  // A real libvips allocation failure cannot be provoked reliably here (it needs the instance to
  // run out of memory), so sharp's output call is stubbed to fail with libvips' own message.
  for (const message of [
    'vips_malloc: out of memory --- size == 512MB',
    'std::bad_alloc',
    'Array buffer allocation failed',
  ]) {
    it(`a sharp allocation failure ("${message}", stubbed sharp) is transient out_of_memory, not corrupt_image`, async () => {
      sinon.stub(sharp.prototype, 'toBuffer').rejects(new Error(message));
      const error = await renderError();
      expect(error).to.be.instanceOf(PipelineError);
      expect((error as PipelineError).code).to.equal('out_of_memory');
      expect((error as PipelineError).kind).to.equal('transient');
    });
  }

  it('a damaged image is still corrupt_image (stubbed sharp with a decode error)', async () => {
    sinon.stub(sharp.prototype, 'toBuffer').rejects(new Error('VipsJpeg: Premature end of input file'));
    expect(((await renderError()) as PipelineError).code).to.equal('corrupt_image');
  });
});
