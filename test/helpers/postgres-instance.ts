// A PostgreSQL server a test owns: its own `initdb` data directory in a temporary folder and its own free port on
// 127.0.0.1, started and stopped with `pg_ctl` (so a test may stop it as a crash would, `-m immediate`, and start it
// again on the same directory and port). The machine's shared server on 5432 is never touched. initdb refuses to
// run as root, so under root every command runs as the `postgres` user, which owns the folder.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './net.ts';

/** The newest installed PostgreSQL's bin folder (Debian's layout), or undefined when there is none. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')) && existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

export class PostgresInstance {
  private dir = '';
  private user: { uid: number; gid: number } | undefined;
  port = 0;
  private running = false;
  private readonly stopAtExit = () => {
    if (this.running) this.runSync(['stop', '-m', 'immediate']);
  };

  constructor(private readonly bin: string) {}

  /** Creates the data directory (trust authentication, user `postgres`) and picks a free port. */
  async init(): Promise<void> {
    this.user = postgresUser();
    this.dir = await mkdtemp(join(tmpdir(), 'latchkey-pg-'));
    if (this.user) await chown(this.dir, this.user.uid, this.user.gid);
    this.port = await freePort();
    await this.run(join(this.bin, 'initdb'), [
      ...['-D', this.dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync'],
    ]);
    process.once('exit', this.stopAtExit);
  }

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  /** Starts the server and resolves once it accepts connections (`pg_ctl -w`). */
  async start(): Promise<void> {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
    await this.run(join(this.bin, 'pg_ctl'), [
      ...['-D', this.dataDir, '-o', options, '-l', join(this.dir, 'server.log'), '-w', '-t', '120', 'start'],
    ]);
    this.running = true;
  }

  /** Stops the server; `immediate` ends every backend at once, as a crash would (recovery runs at the next start). */
  async stop(mode: 'immediate' | 'fast' = 'fast'): Promise<void> {
    await this.run(join(this.bin, 'pg_ctl'), ['-D', this.dataDir, '-m', mode, '-w', 'stop']);
    this.running = false;
  }

  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async createDatabase(name: string): Promise<string> {
    const c = new pg.Client({ connectionString: this.url() });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE "${name}"`);
    } finally {
      await c.end();
    }
    return this.url(name);
  }

  /** Stops the server if it runs and removes the folder. */
  async cleanup(): Promise<void> {
    process.off('exit', this.stopAtExit);
    if (this.running) await this.stop('immediate').catch(() => {});
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  private runSync(args: string[]): void {
    try {
      execFileSync(join(this.bin, 'pg_ctl'), ['-D', this.dataDir, ...args], {
        stdio: 'ignore',
        ...(this.user ?? {}),
      });
    } catch {
      // at exit, best effort
    }
  }

  private run(command: string, args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(this.user ?? {}) });
      let output = '';
      child.stdout.on('data', (d: Buffer) => {
        output += d;
      });
      child.stderr.on('data', (d: Buffer) => {
        output += d;
      });
      child.once('error', reject);
      child.once('exit', (code) => {
        if (code === 0) resolve();
        else reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${output}`));
      });
    });
  }
}
