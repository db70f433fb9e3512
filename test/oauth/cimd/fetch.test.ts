// The pinned fetch of Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01 §4, §6.5):
// the SSRF guards refuse before any connection, and documents are fetched from real servers on loopback.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  fetchCimdDocument,
  type LookupHost,
  warnIfCimdLoopbackAllowed,
} from '../../../src/oauth/cimd/index.ts';
import { documentFor, documentServers, fakeLookup, noConnection, rejectsWith } from './support.ts';

const { tls, httpsServer, httpServer } = documentServers();

describe('fetch guards refuse special-use hosts before any connection (draft §6.5)', () => {
  const now = new Date();
  const cases: [string, string][] = [
    ['10.0.0.1', 'private'],
    ['169.254.169.254', 'cloud metadata (link-local)'],
    ['127.0.0.1', 'loopback (flag off)'],
    ['::1', 'IPv6 loopback (flag off)'],
    ['fd00::1', 'unique-local'],
    ['100.64.0.1', 'CGNAT'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:10.0.0.1', 'IPv4-mapped private'],
    ['0.0.0.0', 'unspecified'],
    ['192.168.0.10', 'private'],
    ['224.0.0.1', 'multicast'],
  ];
  for (const [address, what] of cases) {
    it(`refuses a host that resolves to ${address} (${what}) without connecting`, async () => {
      const lookup = fakeLookup({ 'docs.example': [address] });
      const transport = noConnection();
      const err = await rejectsWith(
        fetchCimdDocument('https://docs.example/client.json', now, {
          allowLoopback: false,
          lookup,
          request: transport,
        }),
        /special-use address/,
      );
      assert.equal(err.staleUsable, false);
      assert.equal(transport.calls, 0);
      assert.deepEqual(lookup.asked, ['docs.example']);
    });
  }

  it('under CIMD_ALLOW_LOOPBACK still refuses every special-use address but loopback', async () => {
    for (const address of ['10.0.0.1', '169.254.169.254', 'fd00::1', '::ffff:10.0.0.1', '0.0.0.0']) {
      const transport = noConnection();
      await rejectsWith(
        fetchCimdDocument('https://docs.example/client.json', now, {
          allowLoopback: true,
          lookup: fakeLookup({ 'docs.example': [address] }),
          request: transport,
        }),
        /special-use address/,
      );
      assert.equal(transport.calls, 0, address);
    }
  });

  it('refuses a host when any one of its addresses is special-use', async () => {
    const transport = noConnection();
    await rejectsWith(
      fetchCimdDocument('https://docs.example/client.json', now, {
        allowLoopback: false,
        lookup: fakeLookup({ 'docs.example': ['93.184.216.34', '10.0.0.1'] }),
        request: transport,
      }),
      /special-use address/,
    );
    assert.equal(transport.calls, 0);
  });

  for (const id of [
    'https://10.0.0.1/client.json',
    'https://[::1]/client.json',
    'https://[::ffff:127.0.0.1]/client.json',
    'https://169.254.169.254/latest/meta-data',
    'https://0x7f000001/client.json',
  ]) {
    it(`refuses the IP literal client_id ${id} without resolving or connecting`, async () => {
      const lookup = fakeLookup({});
      const transport = noConnection();
      await rejectsWith(
        fetchCimdDocument(id, now, { allowLoopback: false, lookup, request: transport }),
        /special-use address/,
      );
      assert.equal(transport.calls, 0);
      assert.deepEqual(lookup.asked, []);
    });
  }

  it('refuses a host outside CIMD_ALLOWED_HOSTS before resolving it', async () => {
    const lookup = fakeLookup({ 'docs.example': ['93.184.216.34'] });
    const transport = noConnection();
    await rejectsWith(
      fetchCimdDocument('https://docs.example/client.json', now, {
        allowLoopback: false,
        allowedHosts: ['claude.ai', '*.claude.com'],
        lookup,
        request: transport,
      }),
      /allowed CIMD hosts/,
    );
    assert.deepEqual(lookup.asked, []);
    assert.equal(transport.calls, 0);
  });

  it('refuses http even under CIMD_ALLOW_LOOPBACK when the loopback name resolves elsewhere', async () => {
    const transport = noConnection();
    await rejectsWith(
      fetchCimdDocument('http://localhost/client.json', now, {
        allowLoopback: true,
        lookup: fakeLookup({ localhost: ['93.184.216.34'] }),
        request: transport,
      }),
      /must use https/,
    );
    assert.equal(transport.calls, 0);
  });

  it('reports a host that does not resolve as a failure the cache may ride out', async () => {
    const err = await rejectsWith(
      fetchCimdDocument('https://nowhere.example/client.json', now, {
        allowLoopback: false,
        lookup: fakeLookup({}),
        request: noConnection(),
      }),
      /could not be resolved/,
    );
    assert.equal(err.staleUsable, true);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Fetching from real servers on loopback

describe('fetching over https on loopback under CIMD_ALLOW_LOOPBACK (draft §4)', () => {
  const now = new Date();

  it('fetches a document from 127.0.0.1 over https with a trusted certificate', async () => {
    const url = httpsServer.serve('/fetch/ok');
    const r = await fetchCimdDocument(url, now, { allowLoopback: true, ca: tls.cert });
    assert.deepEqual(r.document, documentFor(url));
  });

  it('connects to the address it vetted and never asks the resolver twice (DNS rebinding)', async () => {
    const url = `https://client.test:${httpsServer.port}/fetch/rebind`;
    httpsServer.serve('/fetch/rebind', documentFor(url));
    let answers = 0;
    const rebinding: LookupHost = async () => {
      answers++;
      // A rebinding name answers loopback once, then an internal address.
      return [{ address: answers === 1 ? '127.0.0.1' : '10.0.0.1', family: 4 }];
    };
    const r = await fetchCimdDocument(url, now, { allowLoopback: true, ca: tls.cert, lookup: rebinding });
    assert.equal((r.document as { client_id: string }).client_id, url);
    assert.equal(answers, 1);
  });

  it('refuses a loopback document when CIMD_ALLOW_LOOPBACK is off', async () => {
    const url = httpsServer.serve('/fetch/flag-off');
    const before = httpsServer.hits.get('/fetch/flag-off') ?? 0;
    await rejectsWith(fetchCimdDocument(url, now, { allowLoopback: false, ca: tls.cert }), /special-use/);
    assert.equal(httpsServer.hits.get('/fetch/flag-off') ?? 0, before);
  });

  it('fetches over http on loopback only under CIMD_ALLOW_LOOPBACK', async () => {
    const url = httpServer.serve('/fetch/http');
    const r = await fetchCimdDocument(url, now, { allowLoopback: true });
    assert.deepEqual(r.document, documentFor(url));
    await rejectsWith(fetchCimdDocument(url, now, { allowLoopback: false }), /must use https/);
  });

  it('refuses a certificate it does not trust', async () => {
    const url = httpsServer.serve('/fetch/untrusted');
    const err = await rejectsWith(
      fetchCimdDocument(url, now, { allowLoopback: true }),
      /could not be fetched/,
    );
    assert.match(err.detail ?? '', /SELF_SIGNED|CERT|certificate/i);
  });
});

describe('start-up warning', () => {
  it('warns loudly when CIMD_ALLOW_LOOPBACK is on, and says nothing when it is off', () => {
    const lines: string[] = [];
    const log = { warn: (_obj: object, msg: string) => lines.push(msg) };
    warnIfCimdLoopbackAllowed({ cimdAllowLoopback: false }, log);
    assert.equal(lines.length, 0);
    warnIfCimdLoopbackAllowed({ cimdAllowLoopback: true }, log);
    assert.match(lines[0] ?? '', /CIMD_ALLOW_LOOPBACK is on.*never enable it in production/s);
  });
});
