/**
 * Line splitting for a child process's stdout/stderr (one copy for every test that reads a
 * process's output line by line): `onLines(proc.stdout, (line) => …)` calls back once per complete
 * line, without its '\n'; a last line without one is not reported.
 */
import type { Readable } from 'node:stream';

export function onLines(stream: Readable, each: (line: string) => void): void {
  let buf = '';
  stream.on('data', (d: Buffer | string) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      each(line);
    }
  });
}
