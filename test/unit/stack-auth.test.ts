import { expect } from 'chai';
import { stackAuthMode, withoutSignIn } from '../../local/stack-auth.js';

describe('local stack: which authentication the environment asks for', () => {
  const cases: Array<[string, Record<string, string>, string]> = [
    ['nothing set (npm start)', {}, 'jwt'],
    ['UPLOAD_TOKEN alone: the shared token, as before', { UPLOAD_TOKEN: 'a-token-of-24-characters' }, 'token'],
    ['UPLOAD_AUTH=none', { UPLOAD_AUTH: 'none' }, 'none'],
    ['UPLOAD_AUTH=jwt with a token for trusted backends', { UPLOAD_AUTH: 'jwt', UPLOAD_TOKEN: 'x' }, 'jwt'],
    ['UPLOAD_AUTH=token', { UPLOAD_AUTH: ' token ' }, 'token'],
  ];
  for (const [what, env, mode] of cases) it(`${what} → ${mode}`, () => expect(stackAuthMode(env)).to.equal(mode));

  it('benchmarks and pipeline suites run open unless they ask for authentication', () => {
    expect(withoutSignIn(undefined)).to.deep.equal({ UPLOAD_AUTH: 'none' });
    expect(withoutSignIn({ WIDTHS: '320' })).to.deep.equal({ WIDTHS: '320', UPLOAD_AUTH: 'none' });
    expect(withoutSignIn({ UPLOAD_TOKEN: 't' })).to.deep.equal({ UPLOAD_TOKEN: 't' });
    expect(withoutSignIn({ UPLOAD_AUTH: 'jwt' })).to.deep.equal({ UPLOAD_AUTH: 'jwt' });
  });
});
