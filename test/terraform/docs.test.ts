/**
 * terraform/README.md: its Requirements, Inputs and Outputs tables (terraform-docs format) are what
 * versions.tf, variables.tf and outputs.tf say, and the README says what the module creates, how
 * to use and deploy it, and ends its deploy steps with the smoke test.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { documentedDocs, generatedDocs, inputsTable, outputsTable, README } from './docs.js';
import { loadModule, TERRAFORM_DIR } from './hcl.js';

describe('terraform/README.md', function () {
  let readme: string;
  before(function () {
    readme = readFileSync(README, 'utf8');
  });

  it('has the Requirements, Inputs and Outputs tables of versions.tf, variables.tf and outputs.tf (regenerate: node dist/test/terraform/docs.js --write)', async function () {
    const documented = documentedDocs(readme);
    expect(documented, 'a BEGIN_TF_DOCS … END_TF_DOCS section').to.be.a('string');
    expect(documented).to.equal(await generatedDocs());
  });

  it('lists every variable and output once, required ones first', async function () {
    const mod = await loadModule(TERRAFORM_DIR);
    const inputs = inputsTable(mod);
    const names = [...inputs.matchAll(/<a name="input_([a-z0-9_]+)">/g)].map((m) => m[1]);
    expect([...names].sort()).to.deep.equal(Object.keys(mod.variables).sort());
    expect(names[0]).to.equal('project_id');
    expect(inputs).to.include('| `string` | n/a | yes |');
    expect(inputs).to.match(/\[functions\]\(#input\\_functions\) \| .* \| <pre>map\(object\(\{<br>/);
    const outputs = [...outputsTable(mod).matchAll(/<a name="output_([a-z0-9_]+)">/g)].map((m) => m[1]);
    expect([...outputs].sort()).to.deep.equal(Object.keys(mod.outputs).sort());
  });

  it('fails when a variable is documented that variables.tf does not declare', async function () {
    const tampered = readme.replace(
      '<!-- END_TF_DOCS -->',
      '| <a name="input_gone"></a> [gone](#input\\_gone) | x | `string` | n/a | yes |\n<!-- END_TF_DOCS -->',
    );
    expect(documentedDocs(tampered)).not.to.equal(await generatedDocs());
  });

  it('says what the module creates, how to use it and deploy it, with the first-apply errors, and ends the deploy steps with the smoke test', function () {
    for (const heading of [
      '## Usage',
      '## Deploy',
      '### First-apply errors, and what to do',
      '### Serving the variants',
      '### Check the deployment',
      '## What it creates',
    ]) {
      expect(readme, heading).to.include(`\n${heading}\n`);
    }
    expect(readme).to.include('Permission denied while using the Eventarc Service Agent');
    expect(readme).to.include('Could not build the function due to a missing permission on');
    const deploy = readme.slice(readme.indexOf('\n## Deploy\n'), readme.indexOf('\n## What it creates\n'));
    const lastSection = deploy.slice(deploy.lastIndexOf('\n### '));
    expect(lastSection).to.match(/^\n### Check the deployment\n/);
    expect(lastSection).to.include('npm run smoke -- --url "$(terraform output -raw upload_url)"');
  });

  it("is linked from the project README's deploy section", function () {
    const root = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const start = root.indexOf('## Deploy to Google Cloud');
    const section = root.slice(start, root.indexOf('\n## ', start + 1));
    expect(section).to.include('](terraform/README.md)');
  });
});
