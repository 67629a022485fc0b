/**
 * One measurement in a fresh Node process, so its peak RSS and its JIT state are its own: the
 * parent runs `script --child <input as JSON>`, the child prints its result as one tagged JSON line
 * ({@link printChildResult}) among whatever else it logs, and the parent reads that line back.
 */
import { spawn } from 'node:child_process';

const TAG = '@@result ';

/** Runs `script --child <input>` and resolves with the result it printed; `label` names it in errors. */
export function runInFreshProcess<T>(script: string, input: unknown, label: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [script, '--child', JSON.stringify(input)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    proc.on('error', reject);
    proc.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(TAG));
      if (code !== 0 || !line) reject(new Error(`child for ${label} exited ${code}`));
      else resolve(JSON.parse(line.slice(TAG.length)) as T);
    });
  });
}

/** In the child: prints `result` where {@link runInFreshProcess} looks for it. */
export function printChildResult(result: unknown): void {
  process.stdout.write(`${TAG}${JSON.stringify(result)}\n`);
}
