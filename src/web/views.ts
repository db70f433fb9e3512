// Latchkey's own pages: Eta templates through @fastify/view. TEMPLATES_DIR may override any template file
// (looked up there first, by name); every page forbids framing and carries a strict CSP with no script at all.
import { existsSync, readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import view from '@fastify/view';
import { Eta } from 'eta';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AppContext } from '../context.ts';
import { quietLevel } from '../logger.ts';
import { TEMPLATES_DIR } from '../paths.ts';

export async function registerViews(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const overrideDir = ctx.config.templatesDir;
  const eta = new Eta({ views: TEMPLATES_DIR, autoEscape: true, cache: true });
  const defaultResolve = eta.resolvePath;
  if (overrideDir && defaultResolve) {
    // Templates are one flat folder: a name (`./layout` from inside an overriding file too) is looked up in the
    // operator's folder first, then among the built-in ones.
    eta.resolvePath = (template, options) => {
      const name = basename(template) + (extname(template) ? '' : '.eta');
      for (const dir of [overrideDir, TEMPLATES_DIR]) {
        const candidate = join(dir, name);
        if (existsSync(candidate)) return candidate;
      }
      return defaultResolve.call(eta, template, options);
    };
  }
  await app.register(view, { engine: { eta }, templates: TEMPLATES_DIR, production: true });

  const assetFile = (name: string) => {
    const custom = overrideDir ? join(overrideDir, name) : undefined;
    return readFileSync(custom && existsSync(custom) ? custom : join(TEMPLATES_DIR, name), 'utf8');
  };
  const css = assetFile('latchkey.css');
  app.get('/assets/latchkey.css', { logLevel: quietLevel(ctx.config.logLevel) }, async (_req, reply) => {
    reply.header('content-type', 'text/css; charset=utf-8').header('cache-control', 'public, max-age=3600');
    return css;
  });
  // The pages link /favicon.svg; /favicon.ico is what browsers ask for unprompted (an SVG there too: they sniff it).
  const icon = assetFile('favicon.svg');
  for (const path of ['/favicon.svg', '/favicon.ico']) {
    app.get(path, { logLevel: quietLevel(ctx.config.logLevel) }, async (_req, reply) => {
      reply.header('content-type', 'image/svg+xml').header('cache-control', 'public, max-age=86400');
      return icon;
    });
  }
}

export interface PageOptions {
  status?: number;
  /** Origins a form on the page may be redirected to after submission (CSP form-action). */
  formTargets?: string[];
}

export async function renderPage(
  ctx: AppContext,
  reply: FastifyReply,
  template: string,
  data: Record<string, unknown>,
  options: PageOptions = {},
): Promise<FastifyReply> {
  const formAction = ["'self'", ...(options.formTargets ?? [])].join(' ');
  reply
    .code(options.status ?? 200)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('x-frame-options', 'DENY')
    .header(
      'content-security-policy',
      `default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
    );
  const html = await reply.viewAsync(template, { issuer: ctx.config.issuer, ...data });
  return reply.send(html);
}
