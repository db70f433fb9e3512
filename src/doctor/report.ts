// What the doctor finds: a list of steps in the order a client meets them, each passed, failed or skipped, with
// what was seen and, for a failure, what to change.

export type StepStatus = 'pass' | 'fail' | 'skip';

export interface Step {
  /** Stable name of the check, e.g. `prm_root` (README: Check a deployment). */
  readonly id: string;
  readonly status: StepStatus;
  /** What was checked and what was seen. */
  readonly detail: string;
  /** For a failure: what to change. */
  readonly fix?: string;
}

export interface DoctorReport {
  readonly url: string;
  readonly issuer: string;
  readonly ok: boolean;
  readonly steps: readonly Step[];
}

/** Collects steps as the checks run. */
export class Steps {
  readonly list: Step[] = [];

  pass(id: string, detail: string): void {
    this.list.push({ id, status: 'pass', detail });
  }

  fail(id: string, detail: string, fix: string): void {
    this.list.push({ id, status: 'fail', detail, fix });
  }

  skip(id: string, detail: string): void {
    this.list.push({ id, status: 'skip', detail });
  }

  /** Passes when `problem` is undefined, else fails with it. */
  check(id: string, problem: string | undefined, passed: string, fix: string): void {
    if (problem === undefined) this.pass(id, passed);
    else this.fail(id, problem, fix);
  }
}

const LABEL: Record<StepStatus, string> = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' };

/** The report as lines for a terminal: one per step, the fix under a failure, a summary last. */
export function reportText(report: DoctorReport): string {
  const width = Math.max(...report.steps.map((s) => s.id.length));
  const lines = [`Checking ${report.url} against the issuer ${report.issuer}`, ''];
  for (const s of report.steps) {
    lines.push(`${LABEL[s.status]}  ${s.id.padEnd(width)}  ${s.detail}`);
    if (s.fix) lines.push(`${' '.repeat(width + 8)}fix: ${s.fix}`);
  }
  const count = (status: StepStatus) => report.steps.filter((s) => s.status === status).length;
  const skipped = count('skip');
  lines.push(
    '',
    `${count('pass')} passed, ${count('fail')} failed${skipped ? `, ${skipped} skipped` : ''}: ${
      report.ok ? 'Claude and the MCP SDK should connect.' : 'fix the failures above, then run this again.'
    }`,
  );
  return lines.join('\n');
}
