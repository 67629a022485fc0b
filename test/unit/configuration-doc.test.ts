/**
 * docs/configuration.md is the user's reference for the environment: it must list every variable
 * the schema reads, with the schema's default, and no variable the schema does not read.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { describeConfig } from '../../shared/core/config.js';

const doc = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');

/** The table's rows: lines that start with a backticked upper-case variable name. */
function documentedNames(text: string): string[] {
  return [...text.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((m) => m[1]!);
}

describe('docs/configuration.md configuration table', () => {
  for (const variable of describeConfig()) {
    it(`documents ${variable.name} with its default`, () => {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${variable.name}\` |`));
      expect(row, `no row for ${variable.name}`).to.be.a('string');
      const cell = row!.split('|')[2]!.trim();
      if (variable.required) expect(cell).to.equal('**required**');
      else if (variable.defaultValue === undefined) expect(cell).to.equal('unset');
      else if (variable.defaultValue === '') expect(cell).to.equal('empty');
      else expect(cell).to.equal(`\`${variable.defaultValue}\``);
    });
  }

  it('documents only variables the schema reads, each once', () => {
    const names = documentedNames(doc);
    const known = describeConfig().map((v) => v.name);
    for (const name of names) expect(known, `${name} is documented but not in shared/core/config.ts`).to.include(name);
    expect(new Set(names).size, 'a variable has two rows').to.equal(names.length);
  });

  it('recognises a documented variable the schema does not read (fixture)', () => {
    const names = documentedNames(
      '| Variable | Default | Meaning |\n| `WIDTHS` | `320` | x |\n| `NOT_A_SETTING` | unset | y |\n',
    );
    expect(names).to.deep.equal(['WIDTHS', 'NOT_A_SETTING']);
    expect(describeConfig().map((v) => v.name)).to.not.include('NOT_A_SETTING');
  });
});
