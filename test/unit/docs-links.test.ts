/**
 * Every relative link in every tracked Markdown file resolves: the file or folder exists, and an
 * `#anchor` names a heading (or an explicit `<a id>`) of the target Markdown file, by GitHub's
 * slug rules. External links (`https:`, `mailto:` …) are not fetched.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** GitHub's heading id: lower case, punctuation dropped (not `-` or `_`), each space a `-`. */
function githubSlug(headingText: string): string {
  return headingText
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** The text GitHub renders for a heading's Markdown: links and images by their text, no code marks or tags. */
function headingText(markdown: string): string {
  return markdown
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/`/g, '')
    .trim();
}

/** The Markdown with fenced code blocks and HTML comments blanked (line count kept), so nothing in them counts. */
function proseOnly(markdown: string): string {
  const noComments = markdown.replace(/<!--[\s\S]*?-->/g, (comment) => comment.replace(/[^\n]/g, ' '));
  let fence: string | undefined;
  return noComments
    .split('\n')
    .map((line) => {
      const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
      if (fence === undefined) {
        if (marker === undefined) return line;
        fence = marker;
        return '';
      }
      if (marker !== undefined && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) {
        fence = undefined;
      }
      return '';
    })
    .join('\n');
}

/** Every anchor a Markdown file offers: heading slugs (duplicates numbered as GitHub does) and `<a id|name>`. */
function anchorsOf(markdown: string): Set<string> {
  const prose = proseOnly(markdown);
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of prose.split('\n')) {
    const heading = /^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(line);
    if (heading) {
      const slug = githubSlug(headingText(heading[1]!));
      const count = seen.get(slug) ?? 0;
      seen.set(slug, count + 1);
      anchors.add(count === 0 ? slug : `${slug}-${count}`);
    }
  }
  for (const match of prose.matchAll(/<a\s[^>]*\b(?:id|name)=["']([^"']+)["']/gi)) anchors.add(match[1]!);
  return anchors;
}

interface Link {
  readonly target: string;
  readonly line: number;
}

/** CommonMark backslash escapes in a link destination (terraform-docs writes `#input\\_name`). */
function unescapeTarget(target: string): string {
  return target.replace(/\\([!-/:-@[-`{-~])/g, '$1');
}

/** Inline links and images (`[text](target)`, `![alt](target)`) and reference definitions, outside code. */
function linksOf(markdown: string): Link[] {
  // Code spans are blanked line by line (a span does not hide a link on another line).
  const prose = proseOnly(markdown)
    .split('\n')
    .map((line) => line.replace(/(`+)[^`]*?\1/g, (span) => ' '.repeat(span.length)))
    .join('\n');
  const lineAt = (index: number): number => prose.slice(0, index).split('\n').length;
  const links: Link[] = [];
  for (const match of prose.matchAll(/\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+"[^"]*")?\s*\)/g)) {
    links.push({ target: unescapeTarget(match[1]!.replace(/^<|>$/g, '')), line: lineAt(match.index) });
  }
  for (const match of prose.matchAll(/^ {0,3}\[[^\]]+\]:[ \t]*(\S+)/gm)) {
    links.push({ target: match[1]!.replace(/^<|>$/g, ''), line: lineAt(match.index) });
  }
  return links;
}

/**
 * The broken relative links of `files` (repository-relative paths), as `file:line: target (why)`.
 * `read` gives a Markdown file's text (undefined: no such file); `exists` says whether a path is a
 * file or folder of the repository.
 */
function brokenLinks(
  files: readonly string[],
  read: (path: string) => string | undefined,
  exists: (path: string) => boolean,
): string[] {
  const anchorCache = new Map<string, Set<string> | undefined>();
  const anchors = (path: string): Set<string> | undefined => {
    if (!anchorCache.has(path)) {
      const text = read(path);
      anchorCache.set(path, text === undefined ? undefined : anchorsOf(text));
    }
    return anchorCache.get(path);
  };
  const broken: string[] = [];
  for (const file of files) {
    const text = read(file);
    if (text === undefined) continue;
    for (const { target, line } of linksOf(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue; // external
      const hash = target.indexOf('#');
      const rawPath = hash === -1 ? target : target.slice(0, hash);
      const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
      let path: string;
      try {
        const decoded = decodeURIComponent(rawPath.replace(/\?.*$/, ''));
        path =
          decoded === ''
            ? file
            : decoded.startsWith('/')
              ? posix.normalize(decoded.slice(1))
              : posix.join(posix.dirname(file), decoded);
      } catch {
        broken.push(`${file}:${line}: ${target} (bad percent-encoding)`);
        continue;
      }
      path = path.replace(/\/$/, '') || '.';
      if (path.startsWith('..') || !exists(path)) {
        broken.push(`${file}:${line}: ${target} (no such file)`);
        continue;
      }
      if (anchor === undefined || !path.endsWith('.md')) continue;
      if (!anchors(path)?.has(anchor)) broken.push(`${file}:${line}: ${target} (no heading #${anchor} in ${path})`);
    }
  }
  return broken;
}

describe('Markdown links', () => {
  describe('GitHub heading slugs', () => {
    it('drops punctuation and code marks, keeps hyphens and underscores, one hyphen per space', () => {
      expect(githubSlug(headingText('Errors: what each function does'))).to.equal('errors-what-each-function-does');
      expect(githubSlug(headingText('What `npm start` does'))).to.equal('what-npm-start-does');
      expect(githubSlug(headingText('JPEG + WebP only (`FORMATS=webp,jpeg`)'))).to.equal(
        'jpeg--webp-only-formatswebpjpeg',
      );
      expect(githubSlug(headingText("Ours vs the anchor's method"))).to.equal('ours-vs-the-anchors-method');
      expect(githubSlug(headingText('MAX_INPUT_PIXELS and Fan-out'))).to.equal('max_input_pixels-and-fan-out');
      expect(githubSlug(headingText('See [the API](docs/api.md) ✓ Été'))).to.equal('see-the-api--été');
    });

    it('numbers repeated headings as GitHub does, ignores headings in code and counts <a id>', () => {
      const anchors = anchorsOf(
        '# Limits\n## Limits\n```md\n# Not a heading\n```\n<a id="custom"></a>\n### Limits ###\n',
      );
      expect([...anchors]).to.have.members(['limits', 'limits-1', 'limits-2', 'custom']);
    });
  });

  describe('on a fixture', () => {
    const files: Record<string, string> = {
      'README.md': [
        '# Title',
        'See [the guide](docs/guide.md), [its setup](docs/guide.md#set-it-up), [a folder](docs/),',
        'an ![image](docs/pic.png), [this page](#title) and [a site](https://example.com/x#y).',
        'Broken: [gone](docs/missing.md) and [wrong anchor](docs/guide.md#nope), [no such',
        'heading here](#nowhere).',
        'Not links: `[code](nowhere.md)` and',
        '```',
        '[fenced](nowhere.md)',
        '```',
        '<!-- [commented](nowhere.md) -->',
        '[ref]: docs/also-missing.md',
      ].join('\n'),
      'docs/guide.md':
        '# Guide\n\n## Set it up\n\nBack to the [README](../README.md#title).\n\n' +
        '<a name="input_project_id"></a> [project\\_id](#input\\_project\\_id) (terraform-docs escapes `_`)\n',
    };
    const paths = new Set([...Object.keys(files), 'docs', 'docs/pic.png']);
    const broken = brokenLinks(
      Object.keys(files),
      (p) => files[p],
      (p) => paths.has(p),
    );

    it('reports each broken file, anchor and reference definition, with its line', () => {
      expect(broken).to.deep.equal([
        'README.md:4: docs/missing.md (no such file)',
        'README.md:4: docs/guide.md#nope (no heading #nope in docs/guide.md)',
        'README.md:5: #nowhere (no heading #nowhere in README.md)',
        'README.md:11: docs/also-missing.md (no such file)',
      ]);
    });

    it('accepts every good link and ignores code, comments and external URLs', () => {
      expect(
        brokenLinks(
          ['docs/guide.md'],
          (p) => files[p],
          (p) => paths.has(p),
        ),
      ).to.deep.equal([]);
      expect(broken.join('\n')).to.not.match(/nowhere\.md|example\.com|guide\.md#set-it-up|pic\.png/);
    });
  });

  it('every relative link and anchor in the tracked Markdown files resolves', () => {
    const tracked = execFileSync('git', ['ls-files', '-z', '--', '*.md'], { cwd: REPO_ROOT, encoding: 'utf8' })
      .split('\0')
      .filter((path) => path !== '' && existsSync(posix.join(REPO_ROOT, path)));
    expect(tracked, 'tracked Markdown files').to.include.members(['README.md', 'CONTRIBUTING.md']);
    const read = (path: string): string | undefined => {
      const full = posix.join(REPO_ROOT, path);
      return existsSync(full) ? readFileSync(full, 'utf8') : undefined;
    };
    const broken = brokenLinks(tracked, read, (path) => existsSync(posix.join(REPO_ROOT, path)));
    expect(broken, `broken links:\n${broken.join('\n')}`).to.deep.equal([]);
  });
});
