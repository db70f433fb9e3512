// Plain words for what went wrong and for who is asking. A page says what happened and what to do next; the
// protocol's error code stays on it, small, for whoever gives support (README: Pages).
import type { FastifyReply } from 'fastify';
import type { AppContext } from '../context.ts';
import type { OAuthError } from '../oauth/errors.ts';
import { renderPage } from './views.ts';

export interface Explanation {
  heading: string;
  message: string;
}

/**
 * An authorization request Latchkey cannot answer to the client (RFC 6749 §4.1.2.1: the client or its redirect
 * URI cannot be trusted), told to the person.
 */
export function explainAuthorizationError(err: OAuthError): Explanation {
  const d = err.description;
  if (d.startsWith('redirect_uri')) {
    return {
      heading: 'This app asked to send you somewhere unexpected',
      message:
        'The app asked Latchkey to return you to an address it has not registered. For your safety the request ' +
        'stopped here, and nothing was shared with the app.',
    };
  }
  if (err.code === 'invalid_client' || d.includes('client_id') || d.includes('document')) {
    return {
      heading: 'This app is not recognised',
      message:
        'The app that sent you here did not identify itself in a way Latchkey recognises, so it cannot ask for ' +
        'your approval. It may have been removed, or the link that brought you here is incomplete.',
    };
  }
  return {
    heading: 'This link cannot be used',
    message: 'The link that brought you here is damaged or incomplete, so the request stopped here.',
  };
}

export interface ErrorPage extends Explanation {
  /** The protocol's error code (and its short description), shown small for support. */
  code?: string;
  detail?: string;
  /** What the person can do next; a default suits a request that came from an app. */
  next?: string;
  /** A way on, e.g. to the home page. */
  link?: { href: string; label: string };
  status: number;
}

export function errorPage(ctx: AppContext, reply: FastifyReply, page: ErrorPage): Promise<FastifyReply> {
  return renderPage(
    ctx,
    reply,
    'error',
    {
      heading: page.heading,
      message: page.message,
      code: page.code,
      detail: page.detail,
      link: page.link,
      next:
        page.next ??
        'Close this window and start again from the app you came from. If it keeps happening, contact the ' +
          "app's support or your administrator and mention the code below.",
    },
    { status: page.status },
  );
}

/** A date and time for people, in UTC so every reader sees the same thing: "30 Nov 2026, 07:25 UTC". */
export function formatWhen(date: Date): string {
  const text = new Intl.DateTimeFormat('en-GB', {
    dateStyle: 'medium',
    timeStyle: 'short',
    timeZone: 'UTC',
  }).format(date);
  return `${text} UTC`;
}

/** Hosts of URIs, each once, in order (a URI that does not parse is shown as it is). */
export function hostsOf(uris: readonly string[]): string[] {
  return [
    ...new Set(
      uris.map((u) => {
        try {
          return new URL(u).host;
        } catch {
          return u;
        }
      }),
    ),
  ];
}
