// Issue 2, container and operator files. No Docker engine runs here, so the Dockerfile and docker-compose.yml are
// read and held to what the other process tests prove about the start command and its environment; the image's
// HEALTHCHECK command itself is run against a server started with the image's environment.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { COMPOSE_VARIABLES } from '../../scripts/config-docs.ts';
import { loadConfig } from '../../src/config.ts';
import { freePort } from '../helpers/net.ts';
import {
  configVariables,
  endWithTests,
  ROOT,
  START_COMMAND,
  spawnServer,
  tempDir,
} from '../helpers/server-process.ts';
import {
  envPairs,
  execForm,
  type Instruction,
  interpolateDefaults,
  mapping,
  parseDockerfile,
  parseEnvFile,
  parseYaml,
  sequence,
} from './operator-files.ts';

const read = (name: string) => readFileSync(join(ROOT, name), 'utf8');

describe('the Dockerfile', () => {
  const instructions = parseDockerfile(read('Dockerfile'));
  const lastStage = Math.max(...instructions.map((i) => i.stage));
  const runtime = instructions.filter((i) => i.stage === lastStage);
  const only = (keyword: string): Instruction => {
    const found = runtime.filter((i) => i.keyword === keyword);
    assert.equal(found.length, 1, `one ${keyword} in the runtime stage`);
    return found[0]!;
  };
  const env = Object.assign(
    {},
    ...runtime.filter((i) => i.keyword === 'ENV').map((i) => envPairs(i.args)),
  ) as Record<string, string>;

  it('builds in one stage and runs from another that installs production dependencies only', () => {
    assert.ok(lastStage >= 1, 'multi-stage');
    const installs = runtime.filter((i) => i.keyword === 'RUN' && /\bnpm (ci|install)\b/.test(i.args));
    assert.equal(installs.length, 1);
    assert.match(installs[0]!.args, /--omit=dev/);
    for (const copy of runtime.filter((i) => i.keyword === 'COPY')) {
      assert.ok(
        !/node_modules/.test(copy.args),
        `the runtime takes no node_modules from elsewhere: ${copy.args}`,
      );
    }
    const build = instructions.filter((i) => i.stage < lastStage && i.keyword === 'RUN').map((i) => i.args);
    assert.ok(build.includes('npm run build'), 'the build stage runs npm run build');
  });

  it('runs node dist/main.js: the command npm start and the process tests run', () => {
    assert.deepEqual(execForm(only('CMD').args), [...START_COMMAND]);
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    // `exec`: the shell npm runs the script in becomes the server, so npm's signals reach it (start.test.ts).
    assert.equal(pkg.scripts.start, `exec ${START_COMMAND.join(' ')}`);
    assert.ok(!runtime.some((i) => i.keyword === 'ENTRYPOINT'), 'no ENTRYPOINT wraps it');
  });

  it('runs as a non-root user that owns the /data volume', () => {
    const user = only('USER').args.trim();
    assert.ok(!/^(root|0)(:|$)/.test(user), `USER ${user}`);
    const userAt = runtime.indexOf(only('USER'));
    assert.ok(
      runtime
        .slice(0, userAt)
        .some((i) => i.keyword === 'RUN' && new RegExp(`chown ${user}(:\\S+)? /data\\b`).test(i.args)),
      `/data is given to ${user}`,
    );
    assert.ok(execForm(only('VOLUME').args).includes('/data'));
  });

  it('sets HOST=0.0.0.0, PORT=3000 and DATA_DIR=/data, and only variables Latchkey reads', () => {
    assert.equal(env.HOST, '0.0.0.0');
    assert.equal(env.PORT, '3000');
    assert.equal(env.DATA_DIR, '/data');
    const known = configVariables();
    for (const name of Object.keys(env)) assert.ok(known.includes(name), `${name} is read by src/config.ts`);
    assert.equal(loadConfig(env).port, Number(only('EXPOSE').args));
  });

  it('copies files that exist, and everything the package ships (package.json "files") into the image', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const copy of instructions.filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))) {
      const sources = copy.args.split(/\s+/).slice(0, -1);
      for (const source of sources.filter((s) => s !== '.')) {
        assert.ok(existsSync(join(ROOT, source)), `COPY source ${source} exists`);
        assert.ok(!ignored.includes(source), `COPY source ${source} is not in .dockerignore`);
      }
    }
    const pkg = JSON.parse(read('package.json')) as { files: string[] };
    const destinations = runtime.filter((i) => i.keyword === 'COPY').map((i) => i.args.split(/\s+/).at(-1));
    for (const shipped of pkg.files)
      assert.ok(destinations.includes(`./${shipped}`), `the image has ${shipped}`);
  });

  describe('its HEALTHCHECK, run against a server with the image environment', () => {
    const healthcheck = only('HEALTHCHECK').args;
    const command = execForm(healthcheck.slice(healthcheck.indexOf('CMD ') + 4));
    let dir: Awaited<ReturnType<typeof tempDir>>;
    let port: number;
    const server = () =>
      spawnServer({ env: { ...env, PORT: String(port), DATA_DIR: join(dir.path, 'data') } });
    let running: ReturnType<typeof server>;

    const check = (): Promise<number | null> =>
      new Promise((resolve) => {
        const child = spawn(command[0] === 'node' ? process.execPath : command[0]!, command.slice(1), {
          env: { PATH: process.env.PATH, PORT: String(port) },
          stdio: 'ignore',
        });
        child.once('exit', (code) => resolve(code));
      });

    before(async () => {
      dir = await tempDir('latchkey-image-');
      port = await freePort();
      running = server();
    });
    after(async () => {
      await running.stop();
      await dir.remove();
    });

    it('asks /readyz', () => {
      assert.match(command.join(' '), /\/readyz\b/);
    });

    it('passes while the server is ready and fails once it is gone', async () => {
      await running.listening;
      assert.equal(await check(), 0);
      assert.deepEqual(await running.stop(), { code: 0, signal: null });
      assert.equal(await check(), 1);
    });
  });
});

describe('docker-compose.yml', () => {
  const compose = mapping(parseYaml(read('docker-compose.yml')), 'the compose file');
  const services = mapping(compose.services, 'services');
  const postgres = mapping(services.postgres, 'services.postgres');
  const latchkey = mapping(services.latchkey, 'services.latchkey');
  const latchkeyEnv = mapping(latchkey.environment, 'services.latchkey.environment') as Record<
    string,
    string
  >;
  const volumes = mapping(compose.volumes, 'volumes');

  it('runs Postgres on a named volume with a pg_isready health check', () => {
    const [volume] = sequence(postgres.volumes, 'services.postgres.volumes');
    const name = volume!.split(':')[0]!;
    assert.ok(name in volumes, `${name} is a named volume`);
    assert.equal(volume!.split(':')[1], '/var/lib/postgresql/data');
    const test = sequence(mapping(postgres.healthcheck, 'postgres healthcheck').test, 'healthcheck.test');
    assert.match(test.join(' '), /pg_isready/);
  });

  it('starts Latchkey from this Dockerfile once Postgres is healthy', () => {
    assert.equal(latchkey.build, '.');
    const dependsOn = mapping(latchkey.depends_on, 'depends_on');
    assert.equal(mapping(dependsOn.postgres, 'depends_on.postgres').condition, 'service_healthy');
  });

  it('wires ISSUER, DATABASE_URL (to the postgres service) and PORT (to the published port)', () => {
    for (const name of ['ISSUER', 'DATABASE_URL', 'PORT']) assert.ok(name in latchkeyEnv, `${name} is set`);
    // With the defaults compose fills in when .env sets nothing; the password is one variable in both places.
    const db = new URL(interpolateDefaults(latchkeyEnv.DATABASE_URL!));
    const pgEnv = Object.fromEntries(
      Object.entries(mapping(postgres.environment, 'postgres environment')).map(([k, v]) => [
        k,
        interpolateDefaults(String(v)),
      ]),
    );
    assert.match(latchkeyEnv.DATABASE_URL!, /:\$\{POSTGRES_PASSWORD:-[^}]+\}@/);
    assert.match(
      String(mapping(postgres.environment, 'postgres').POSTGRES_PASSWORD),
      /^\$\{POSTGRES_PASSWORD:-/,
    );
    assert.equal(db.hostname, 'postgres');
    assert.equal(db.port, '5432');
    assert.equal(db.username, pgEnv.POSTGRES_USER);
    assert.equal(db.password, pgEnv.POSTGRES_PASSWORD);
    assert.equal(db.pathname, `/${pgEnv.POSTGRES_DB}`);
    const published = sequence(latchkey.ports, 'ports').map((p) => p.split(':'));
    assert.ok(
      published.some(([, container]) => container === latchkeyEnv.PORT),
      `the container port ${latchkeyEnv.PORT} is published`,
    );
  });

  it('sets only variables Latchkey reads, to a valid configuration', () => {
    const known = configVariables();
    for (const name of Object.keys(latchkeyEnv))
      assert.ok(known.includes(name), `${name} is read by src/config.ts`);
    const resolved = Object.fromEntries(
      Object.entries(latchkeyEnv).map(([k, v]) => [k, interpolateDefaults(v)]),
    );
    const config = loadConfig(resolved);
    assert.equal(config.databaseUrl, interpolateDefaults(latchkeyEnv.DATABASE_URL!));
    const [host] = sequence(latchkey.ports, 'ports')[0]!.split(':');
    assert.equal(config.issuer, `http://localhost:${host}`, 'the default issuer is the published address');
  });

  it('runs the example MCP server from the same image, registered with Latchkey through RESOURCE_SERVERS', async () => {
    const services = mapping(compose.services, 'services');
    const mcp = mapping(services['mcp-server'], 'services.mcp-server');
    assert.equal(mcp.build, '.');
    const command = sequence(mcp.command, 'services.mcp-server.command');
    assert.deepEqual(command.slice(0, 1), ['node']);
    assert.ok(existsSync(join(ROOT, command[1]!)), `${command[1]} is built by npm run build`);
    assert.equal(
      mapping(mapping(mcp.depends_on, 'depends_on').latchkey, 'depends_on.latchkey').condition,
      'service_healthy',
    );
    const env = Object.fromEntries(
      Object.entries(mapping(mcp.environment, 'mcp-server environment')).map(([k, v]) => [
        k,
        interpolateDefaults(String(v)),
      ]),
    );
    const { loadMcpServerConfig } = await import('../../examples/mcp-server/server.ts');
    const example = loadMcpServerConfig(env);
    const latchkeyConfig = loadConfig(
      Object.fromEntries(Object.entries(latchkeyEnv).map(([k, v]) => [k, interpolateDefaults(v)])),
    );
    const declared = latchkeyConfig.resourceServers.find((r) => r.clientId === example.app.clientId);
    assert.ok(declared, 'Latchkey declares the example as a resource server');
    assert.equal(declared.uri, example.app.publicUrl);
    assert.equal(declared.clientSecret, example.app.clientSecret);
    assert.equal(example.app.issuer, latchkeyConfig.issuer);
    assert.equal(new URL(example.app.introspectionUrl ?? '').hostname, 'latchkey');
    assert.ok(
      sequence(mcp.ports, 'ports').some((p) => p.split(':')[1] === String(example.port)),
      'the example port is published',
    );
  });

  it('gives the example MCP server its own health check, which passes while it serves and fails once it is gone', async () => {
    const mcp = mapping(services['mcp-server'], 'services.mcp-server');
    const check = sequence(mapping(mcp.healthcheck, 'mcp-server healthcheck').test, 'healthcheck.test');
    assert.equal(check[0], 'CMD');
    const command = check.slice(1);
    assert.equal(command[0], 'node', 'the image has node and no curl');
    const env = Object.fromEntries(
      Object.entries(mapping(mcp.environment, 'mcp-server environment')).map(([k, v]) => [
        k,
        interpolateDefaults(String(v)),
      ]),
    );
    const port = String(await freePort());
    const runCheck = (): Promise<number | null> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, command.slice(1), {
          env: { PATH: process.env.PATH, PORT: port },
          stdio: 'ignore',
        });
        child.once('exit', (code) => resolve(code));
      });
    const script = join(ROOT, sequence(mcp.command, 'command')[1]!);
    const server = endWithTests(
      spawn(process.execPath, [script], {
        env: { PATH: process.env.PATH, ...env, HOST: '127.0.0.1', PORT: port },
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    );
    const exited = new Promise((resolve) => server.once('exit', resolve));
    let said = '';
    await new Promise<void>((resolve, reject) => {
      server.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        said += chunk;
        if (/ listening on /.test(said)) resolve();
      });
      server.once('exit', () => reject(new Error(`the example MCP server ended: ${said}`)));
    });
    assert.equal(await runCheck(), 0, 'healthy while it serves');
    server.kill('SIGTERM');
    await exited;
    assert.equal(await runCheck(), 1, 'unhealthy once it is gone');
  });

  it('takes every variable it interpolates from .env.example, and each compose-only variable there is used with the same default', () => {
    const text = read('docker-compose.yml');
    const used = new Map<string, string | undefined>();
    for (const m of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g)) {
      const [, name, fallback] = m;
      if (used.has(name!)) {
        assert.equal(used.get(name!), fallback, `${name} has one default throughout docker-compose.yml`);
      }
      used.set(name!, fallback);
    }
    const listed = new Map(parseEnvFile(read('.env.example')).map((e) => [e.name, e.value]));
    for (const name of used.keys()) assert.ok(listed.has(name), `.env.example lists ${name}`);
    for (const v of COMPOSE_VARIABLES) {
      assert.ok(used.has(v.name), `docker-compose.yml uses ${v.name}`);
      assert.equal(used.get(v.name), listed.get(v.name), `${v.name}: the same default in both files`);
    }
    for (const name of ['EXAMPLE_MCP_SECRET', 'POSTGRES_PASSWORD']) assert.ok(used.has(name), name);
  });

  it('is described in the README: each container and the variables that reach it', () => {
    const readme = read('README.md');
    const start = readme.indexOf('### Which variables reach which container');
    assert.ok(start !== -1, 'README.md has the section');
    const section = readme.slice(start, readme.indexOf('\n#', start + 4));
    for (const [service, definition] of Object.entries(services)) {
      assert.ok(section.includes(`\`${service}\``), `the README names the ${service} container`);
      const environment = mapping(definition, service).environment;
      for (const name of Object.keys(environment ? mapping(environment, service) : {})) {
        assert.ok(section.includes(`\`${name}\``), `the README says ${name} reaches ${service}`);
      }
    }
    for (const v of COMPOSE_VARIABLES) assert.ok(section.includes(`\`${v.name}\``), v.name);
  });
});

describe('.env.example', () => {
  const entries = parseEnvFile(read('.env.example'));

  it('lists exactly the variables src/config.ts reads and those docker compose reads, once each, each explained', () => {
    const variables = configVariables();
    for (const contract of ['ISSUER', 'PORT', 'HOST', 'DATABASE_URL', 'DATA_DIR', 'LOG_LEVEL']) {
      assert.ok(variables.includes(contract), `${contract} is found in src/config.ts`);
    }
    assert.deepEqual(
      entries.map((e) => e.name).sort(),
      [...variables, ...COMPOSE_VARIABLES.map((v) => v.name)].sort(),
    );
    for (const e of entries) assert.ok(e.comment.length > 0, `${e.name} has an explanation`);
  });

  it('gives every variable its default: read as the environment, it is the default configuration', () => {
    const env = Object.fromEntries(
      entries.filter((e) => configVariables().includes(e.name)).map((e) => [e.name, e.value]),
    );
    assert.deepEqual(loadConfig(env), loadConfig({}));
  });
});
