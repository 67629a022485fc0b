import { expect } from 'chai';
import { PipelineError } from '../../shared/core/errors.js';
import { METADATA_MAX_BYTES, METADATA_MAX_KEYS, parseMetadata, parseMetadataText } from '../../shared/core/metadata.js';

/** The message of the `invalid_metadata` error `run` throws. */
function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).to.be.instanceOf(PipelineError);
    expect((error as PipelineError).code).to.equal('invalid_metadata');
    expect((error as PipelineError).status).to.equal(400);
    return (error as PipelineError).message;
  }
  expect.fail('accepted');
}

describe('per-upload metadata (core/metadata.ts)', () => {
  it('keeps an object of strings, numbers and booleans as given', () => {
    const value = { postId: 'p1', rank: 3.5, draft: false, 'ünïcode key': 'värde' };
    expect(parseMetadata(value, 'form field')).to.deep.equal(value);
    expect(parseMetadataText(JSON.stringify(value), 'header')).to.deep.equal(value);
  });

  it('says what is wrong, and where the metadata came from', () => {
    expect(refusal(() => parseMetadataText('{"a":', 'header'))).to.equal('The metadata (header) is not JSON text.');
    expect(refusal(() => parseMetadataText('[1,2]', 'query'))).to.match(/\(query\) must be a JSON object/);
    expect(refusal(() => parseMetadata(null, 'form field'))).to.match(/must be a JSON object/);
    expect(refusal(() => parseMetadata({ tags: ['a'] }, 'form field'))).to.match(
      /at "tags": values must be strings, numbers or booleans/,
    );
    expect(refusal(() => parseMetadata({ nested: { a: 1 } }, 'x'))).to.match(/at "nested"/);
    expect(refusal(() => parseMetadata({ n: null }, 'x'))).to.match(/at "n"/);
    expect(refusal(() => parseMetadata({ __name__: 'x' }, 'x'))).to.match(/reserved/);
    expect(refusal(() => parseMetadata({ ['k'.repeat(129)]: 'x' }, 'x'))).to.match(/at most 128 characters/);
  });

  it(`refuses more than ${METADATA_MAX_KEYS} keys and more than ${METADATA_MAX_BYTES} bytes as JSON, and accepts the limits`, () => {
    const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
    expect(Object.keys(parseMetadata(keys(METADATA_MAX_KEYS), 'x'))).to.have.length(METADATA_MAX_KEYS);
    expect(refusal(() => parseMetadata(keys(METADATA_MAX_KEYS + 1), 'x'))).to.match(/at most 32 keys/);
    const fill = (n: number) => ({ s: 'x'.repeat(n - '{"s":""}'.length) });
    expect(Buffer.byteLength(JSON.stringify(fill(METADATA_MAX_BYTES)))).to.equal(METADATA_MAX_BYTES);
    expect(parseMetadata(fill(METADATA_MAX_BYTES), 'x')).to.deep.equal(fill(METADATA_MAX_BYTES));
    expect(refusal(() => parseMetadata(fill(METADATA_MAX_BYTES + 1), 'x'))).to.match(/at most 4096 bytes/);
    expect(refusal(() => parseMetadataText(' '.repeat(3 * METADATA_MAX_BYTES), 'header'))).to.match(/bytes of text/);
  });
});
