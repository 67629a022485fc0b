/**
 * The README's configuration table is the user's reference: it must list every variable the
 * schema reads, with the schema's default.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { describeConfig } from '../../shared/config.js';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

describe('README configuration table', () => {
  for (const variable of describeConfig()) {
    it(`documents ${variable.name} with its default`, () => {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${variable.name}\` |`));
      expect(row, `no row for ${variable.name}`).to.be.a('string');
      const cell = row!.split('|')[2]!.trim();
      if (variable.required) expect(cell).to.equal('**required**');
      else if (variable.defaultValue === undefined) expect(cell).to.equal('unset');
      else if (variable.defaultValue === '') expect(cell).to.equal('empty');
      else expect(cell).to.equal(`\`${variable.defaultValue}\``);
    });
  }
});
