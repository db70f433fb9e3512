// The peer's client (bench/peer.ts), shared with bench/token.ts without loading the peer itself.
export const PEER_CLIENT_ID = 'bench-client';
export const PEER_REDIRECT_URI = 'http://127.0.0.1:9/cb';
export const PEER_VERIFIER = 'bench-verifier-bench-verifier-bench-verifier-0123456789';
