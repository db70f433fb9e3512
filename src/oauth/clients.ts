// Client lookup: turns a client_id into a client, or an invalid_client error that says why.
// Registered clients (dynamic and operator) are read from the database. URL client_ids are Client ID Metadata
// Documents (draft-ietf-oauth-client-id-metadata-document), fetched and cached by the CIMD module.
import type { Client } from '../generated/prisma/client.ts';
import type { Stores } from '../store/index.ts';
import { OAuthError } from './errors.ts';

export interface ClientResolver {
  /** The client for `clientId`; throws OAuthError('invalid_client') when there is none or it is unusable. */
  resolve(clientId: string): Promise<Client>;
}

export function createClientResolver(stores: Stores): ClientResolver {
  return {
    async resolve(clientId) {
      const client = await stores.clients.findByClientId(clientId);
      if (!client) throw new OAuthError('invalid_client', 'unknown client_id');
      return client;
    },
  };
}
