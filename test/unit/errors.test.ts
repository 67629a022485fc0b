import { expect } from 'chai';
import {
  classifyError,
  type ERROR_CODES,
  PipelineError,
  permanent,
  toHttpError,
  transient,
} from '../../shared/core/errors.js';

describe('errors', () => {
  const classes: Array<[string, unknown, 'permanent' | 'transient']> = [
    ['a permanent pipeline error', permanent('corrupt_image', 'bad'), 'permanent'],
    ['a transient pipeline error', transient('storage_unavailable', 'down'), 'transient'],
    ['storage 503', { code: 503, message: 'Service Unavailable' }, 'transient'],
    ['storage 500', { code: 500 }, 'transient'],
    ['storage 429', { code: 429 }, 'transient'],
    ['storage 408', { code: 408 }, 'transient'],
    ['gaxios response 502', { response: { status: 502 } }, 'transient'],
    ['storage 403', { code: 403 }, 'permanent'],
    ['storage 400', { code: 400 }, 'permanent'],
    ['a network error', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'transient'],
    ['an unknown throw', 'weird', 'transient'],
  ];
  for (const [what, error, expected] of classes) {
    it(`classifies ${what} as ${expected}`, () => expect(classifyError(error)).to.equal(expected));
  }

  const statuses: Array<[keyof typeof ERROR_CODES, number]> = [
    ['payload_too_large', 413],
    ['not_an_image', 415],
    ['format_not_allowed', 415],
    ['too_many_pixels', 422],
    ['too_many_frames', 422],
    ['corrupt_image', 422],
    ['unauthorized', 401],
    ['method_not_allowed', 405],
    ['not_found', 404],
    ['publish_failed', 503],
  ];
  for (const [code, status] of statuses) {
    it(`maps ${code} to HTTP ${status}`, () => {
      const { status: actual, body } = toHttpError(new PipelineError(code, 'x'));
      expect(actual).to.equal(status);
      expect(body.error.code).to.equal(code);
      expect(body.error.retryable).to.equal(status === 503);
    });
  }

  it('hides internals of unknown errors', () => {
    const { status, body } = toHttpError(new Error('ENOENT /srv/secret/path.js at line 3'));
    expect(status).to.equal(503);
    expect(JSON.stringify(body)).not.to.contain('/srv/secret');
    const permanentUnknown = toHttpError({ code: 403, message: 'caller lacks storage.objects.create on /b/x' });
    expect(permanentUnknown.status).to.equal(500);
    expect(JSON.stringify(permanentUnknown.body)).not.to.contain('storage.objects.create');
  });

  it('tells the client not to retry an unknown permanent failure (internal), and to retry an unknown transient one', () => {
    const permanentUnknown = toHttpError({ code: 403, message: 'caller lacks storage.objects.create on /b/x' });
    expect(permanentUnknown.body.error, 'a 403 from a Google API').to.include({ code: 'internal', retryable: false });
    const transientUnknown = toHttpError(new Error('socket hang up'));
    expect(transientUnknown.body.error, 'an unknown throw').to.include({ code: 'unavailable', retryable: true });
  });

  it('keeps safe details', () => {
    const { body } = toHttpError(
      permanent('too_many_pixels', 'too big', { width: 20000, height: 20000, maxPixels: 50_000_000 }),
    );
    expect(body.error.details).to.deep.equal({ width: 20000, height: 20000, maxPixels: 50_000_000 });
  });
});
