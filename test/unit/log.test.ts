import { expect } from 'chai';
import { createLogger } from '../../shared/cloud/log.js';

describe('log', () => {
  it('writes one Cloud Logging JSON line per event, with bound fields', () => {
    const lines: string[] = [];
    const log = createLogger({ fn: 'resize' }, (line) => lines.push(line)).child({ imageId: 'abc' });
    log.warn('job failed', { event: 'job.error', attempt: 2 });
    expect(lines).to.have.length(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).to.include({
      severity: 'WARNING',
      message: 'job failed',
      fn: 'resize',
      imageId: 'abc',
      event: 'job.error',
      attempt: 2,
    });
    expect(lines[0]).not.to.contain('\n');
  });

  it('redacts secrets and summarises errors without stacks', () => {
    const lines: string[] = [];
    const log = createLogger({}, (line) => lines.push(line));
    log.error('oops', {
      authorization: 'Bearer s3cret',
      uploadToken: 's3cret',
      error: Object.assign(new Error('boom'), { code: 503 }),
    });
    expect(lines[0]).not.to.contain('s3cret');
    const entry = JSON.parse(lines[0]!);
    expect(entry.error).to.deep.equal({ name: 'Error', message: 'boom', code: 503 });
    expect(lines[0]).not.to.contain('at ');
  });
});
