import { expect } from 'chai';
import { EventMessageV1, parseJob, type JobMessage } from '../../shared/core/schemas.js';
import { PipelineError } from '../../shared/core/errors.js';

const job: JobMessage = {
  v: 1,
  kind: 'resize',
  imageId: '0123456789abcdef0123456789abcdef',
  original: { bucket: 'p-uploads', name: 'originals/0123456789abcdef0123456789abcdef', generation: '1712345678901234' },
  info: { format: 'jpeg', width: 4000, height: 3000, bytes: 123456, contentType: 'image/jpeg' },
  job: { index: 0, count: 2 },
  variants: [{ width: 320, format: 'avif' }],
  plan: [
    { width: 320, format: 'avif' },
    { width: 320, format: 'jpeg' },
  ],
  dispatch: 0,
  createdAt: '2026-01-01T00:00:00.000Z',
};

describe('messages', () => {
  it('round-trips a job through bytes', () => {
    expect(parseJob(Buffer.from(JSON.stringify(job)))).to.deep.equal(job);
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['not JSON', 'not json{', /not JSON/],
    ['an unknown version', { ...job, v: 2 }, /v /],
    ['a bad image id', { ...job, imageId: 'XYZ' }, /imageId must be 32 lowercase hex digits/],
    ['an unknown format', { ...job, variants: [{ width: 320, format: 'gif' }] }, /variants\.0\.format/],
    ['no variants', { ...job, variants: [] }, /variants/],
    ['a non-numeric generation', { ...job, original: { ...job.original, generation: 'abc' } }, /original\.generation/],
  ];
  for (const [what, body, message] of bad) {
    it(`rejects ${what} as a permanent invalid_job`, () => {
      const data = typeof body === 'string' ? Buffer.from(body) : Buffer.from(JSON.stringify(body));
      try {
        parseJob(data);
        expect.fail('should throw');
      } catch (error) {
        expect(error).to.be.instanceOf(PipelineError);
        expect((error as PipelineError).code).to.equal('invalid_job');
        expect((error as PipelineError).kind).to.equal('permanent');
        expect((error as Error).message).to.match(message);
      }
    });
  }

  it('validates events by type', () => {
    const ready = {
      v: 1,
      type: 'image.ready',
      imageId: job.imageId,
      manifest: { bucket: 'b', name: 'n' },
      variants: 15,
      at: job.createdAt,
    };
    expect(EventMessageV1.safeParse(ready).success).to.equal(true);
    expect(EventMessageV1.safeParse({ ...ready, type: 'image.done' }).success).to.equal(false);
  });
});
