/**
 * A structural reader of HCL: which names a body writes as attributes (`name = …`) and which as
 * blocks (`name { … }`), with the blocks' labels and bodies. @cdktf/hcl2json cannot tell
 * `x { … }` from `x = [{ … }]` (both become an array of objects), and that difference is what the
 * provider schema checks need. Expressions are skipped, never evaluated: strings with templates,
 * heredocs, comments and brackets are followed only to find where an attribute ends.
 */

export interface HclBlock {
  readonly type: string;
  readonly labels: string[];
  readonly body: HclBody;
  readonly line: number;
}

export interface HclBody {
  /** Attribute name → line. */
  readonly attributes: Map<string, number>;
  readonly blocks: HclBlock[];
}

export class HclSyntaxError extends Error {}

export function parseHclStructure(text: string): HclBody {
  let i = 0;
  const lineAt = (pos: number): number => text.slice(0, pos).split('\n').length;

  const skipComment = (): boolean => {
    if (text[i] === '#' || (text[i] === '/' && text[i + 1] === '/')) {
      while (i < text.length && text[i] !== '\n') i++;
      return true;
    }
    if (text[i] === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) throw new HclSyntaxError(`unterminated comment at line ${lineAt(i)}`);
      i = end + 2;
      return true;
    }
    return false;
  };

  const skipSpace = (newlines: boolean): void => {
    for (;;) {
      if (text[i] === ' ' || text[i] === '\t' || text[i] === '\r' || (newlines && text[i] === '\n')) i++;
      else if (!skipComment()) return;
    }
  };

  // A quoted string, with ${…} and %{…} templates (which may hold strings of their own).
  const skipString = (): void => {
    const start = i;
    i++; // opening quote
    while (i < text.length) {
      const c = text[i];
      if (c === '\\') i += 2;
      else if (c === '"') {
        i++;
        return;
      } else if ((c === '$' || c === '%') && text[i + 1] === '{') {
        i += 2;
        skipExpression('}');
        i++; // closing brace of the template
      } else if (c === '\n') throw new HclSyntaxError(`unterminated string at line ${lineAt(start)}`);
      else i++;
    }
    throw new HclSyntaxError(`unterminated string at line ${lineAt(start)}`);
  };

  const skipHeredoc = (): void => {
    const match = /^<<-?([A-Za-z_][A-Za-z0-9_]*)\r?\n/.exec(text.slice(i));
    if (!match) throw new HclSyntaxError(`bad heredoc at line ${lineAt(i)}`);
    i += match[0].length;
    for (;;) {
      const end = text.indexOf('\n', i);
      const line = text.slice(i, end < 0 ? undefined : end);
      i = end < 0 ? text.length : end + 1;
      if (line.trim() === match[1]) return;
      if (end < 0) throw new HclSyntaxError(`unterminated heredoc ${match[1]}`);
    }
  };

  /**
   * Skips an expression up to (not including) a newline at depth 0, or the closing `until`
   * character that has no opening one in the expression.
   */
  function skipExpression(until: '\n' | '}'): void {
    let depth = 0;
    while (i < text.length) {
      const c = text[i]!;
      if (c === '"') skipString();
      else if (c === '<' && text[i + 1] === '<' && /[-A-Za-z_]/.test(text[i + 2] ?? '')) skipHeredoc();
      else if (skipComment()) continue;
      else if (c === '(' || c === '[' || c === '{') {
        depth++;
        i++;
      } else if (c === ')' || c === ']' || c === '}') {
        if (depth === 0) {
          if (c === '}') return;
          throw new HclSyntaxError(`unbalanced ${c} at line ${lineAt(i)}`);
        }
        depth--;
        i++;
      } else if (c === '\n' && depth === 0 && until === '\n') return;
      else i++;
    }
  }

  function parseBody(closing: boolean): HclBody {
    const body: HclBody = { attributes: new Map(), blocks: [] };
    for (;;) {
      skipSpace(true);
      if (i >= text.length) {
        if (closing) throw new HclSyntaxError('unexpected end of file: missing }');
        return body;
      }
      if (text[i] === '}') {
        if (!closing) throw new HclSyntaxError(`unexpected } at line ${lineAt(i)}`);
        i++;
        return body;
      }
      const start = i;
      const name = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(text.slice(i))?.[0];
      if (!name) throw new HclSyntaxError(`expected a name at line ${lineAt(i)}: ${text.slice(i, i + 20)}`);
      i += name.length;
      skipSpace(false);
      if (text[i] === '=' && text[i + 1] !== '=') {
        i++;
        body.attributes.set(name, lineAt(start));
        skipExpression('\n');
        continue;
      }
      const labels: string[] = [];
      while (text[i] !== '{') {
        if (text[i] === '"') {
          const from = i;
          skipString();
          labels.push(text.slice(from + 1, i - 1));
        } else {
          const label = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(text.slice(i))?.[0];
          if (!label) throw new HclSyntaxError(`expected = or { after ${name} at line ${lineAt(start)}`);
          labels.push(label);
          i += label.length;
        }
        skipSpace(false);
      }
      i++; // {
      body.blocks.push({ type: name, labels, body: parseBody(true), line: lineAt(start) });
    }
  }

  return parseBody(false);
}
