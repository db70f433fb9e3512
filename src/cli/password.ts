// Reading a new password: from standard input (--password-stdin, for scripts), or typed twice at a terminal with
// nothing echoed. The value is only ever passed on to be hashed; it is never printed or logged.
import { newPasswordProblem } from '../signin/password-policy.ts';
import { CliError, EXIT_USAGE } from './command.ts';

/** Reads all of standard input; one trailing newline ends the line that carried the password and is dropped. */
export async function readPasswordFromStdin(stdin: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** Refuses a password that is empty, shorter than MIN_PASSWORD_LENGTH characters or absurdly long. */
export function checkNewPassword(password: string): void {
  const problem = newPasswordProblem(password);
  if (problem) throw new CliError(problem, EXIT_USAGE);
}

/** Asks for a new password twice at the terminal, without echo, and returns it when both entries match. */
export async function promptNewPassword(
  stdin: NodeJS.ReadStream,
  out: NodeJS.WritableStream,
): Promise<string> {
  const first = await promptHidden('Password: ', stdin, out);
  checkNewPassword(first);
  const second = await promptHidden('Repeat password: ', stdin, out);
  if (first !== second) throw new CliError('the passwords do not match', EXIT_USAGE);
  return first;
}

/** Reads one line from a terminal in raw mode, echoing nothing. Ctrl-C or Ctrl-D on an empty line cancels. */
export function promptHidden(
  prompt: string,
  stdin: NodeJS.ReadStream,
  out: NodeJS.WritableStream,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      out.write('\n');
    };
    const onData = (chunk: Buffer | string) => {
      const text = chunk.toString();
      // Escape sequences (arrow keys and the like) are not part of a password.
      if (text.startsWith('\u001b')) return;
      for (const ch of text) {
        if (ch === '\r' || ch === '\n') {
          finish();
          resolve(value);
          return;
        }
        if (ch === '\u0003' || (ch === '\u0004' && value === '')) {
          finish();
          reject(new CliError('cancelled', 130));
          return;
        }
        if (ch === '\u007f' || ch === '\b') {
          value = [...value].slice(0, -1).join('');
        } else if (ch >= ' ') {
          value += ch;
        }
      }
    };
    // Echo goes off before the prompt shows, so nothing typed in answer to it is ever echoed.
    stdin.setRawMode(true);
    out.write(prompt);
    stdin.on('data', onData);
    stdin.resume();
  });
}
