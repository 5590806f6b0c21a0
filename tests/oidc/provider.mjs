// A real OpenID provider for the end-to-end tests: npm `oidc-provider` (OpenID Certified),
// configured from the JSON file named by argv[2]:
//   { "issuer": "http://127.0.0.1:PORT", "port": PORT,
//     "clients": [{ "client_id", "client_secret", "redirect_uris": [...] }],
//     "accounts": { "<login>": { claims…, "attack": "<how to spoil its ID token>" } },
//     "conform_id_token_claims": false }
// Its built-in login form (devInteractions) signs in as the account typed in `login`; consent
// is granted without a page. An account with `attack` gets its genuine ID token replaced, in
// the token response, by a spoiled one signed with the provider's own key (or a foreign one,
// or none): what a hostile or broken provider would send.
// With `conform_id_token_claims` the ID token carries `sub` alone and every other claim is
// only at the userinfo endpoint (OpenID Connect Core §5.4, as Okta's org server does).
// `POST /admin/rotate` rotates the signing key: a new kid signs every ID token from then on
// and the JWKS publishes it alone (the previous key withdrawn); answers the new kid.
// Prints `listening` once ready. Logs nothing else but errors.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// The packages `cargo xtask install` put under MCP_AUTH_NPM_PREFIX (ES modules, which
// NODE_PATH does not reach): imported by the entry their package.json names.
async function load(name) {
  const dir = join(process.env.MCP_AUTH_NPM_PREFIX, 'node_modules', name);
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  let entry = manifest.exports?.['.'] ?? manifest.exports ?? manifest.main ?? 'index.js';
  while (typeof entry === 'object') entry = entry.import ?? entry.node ?? entry.default;
  return import(pathToFileURL(join(dir, entry)).href);
}
const { default: Provider } = await load('oidc-provider');
const { SignJWT, importJWK, decodeJwt, generateKeyPair, exportJWK } = await load('jose');

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = config.accounts;
// The provider's signing key, and one it never publishes (for the unknown-kid attack).
async function privateJwk(kid) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
}
config.signing_jwk = await privateJwk('op-key-1');
config.foreign_jwk = await privateJwk('op-key-unpublished');
// The key ID tokens are signed with; after a rotation, no longer `signing_jwk`.
let active = config.signing_jwk;
let rotations = 0;
function publicJwk({ d, p, q, dp, dq, qi, ...pub }) {
  return pub;
}

const provider = new Provider(config.issuer, {
  clients: config.clients.map((c) => ({
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    ...c,
  })),
  jwks: { keys: [config.signing_jwk] },
  cookies: { keys: ['mcp-auth-e2e-cookie-key'] },
  pkce: { required: () => true },
  conformIdTokenClaims: config.conform_id_token_claims === true,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'hd'],
    groups: ['groups'],
  },
  features: { devInteractions: { enabled: true } },
  ttl: { AccessToken: 300, AuthorizationCode: 60, IdToken: 300, Interaction: 600, Session: 600, Grant: 600 },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        const { attack, ...claims } = account;
        return { sub: id, ...claims };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes].join(' ') : 'openid');
    grant.addOIDCClaims(['email', 'email_verified', 'groups', 'hd', 'preferred_username', 'name']);
    await grant.save();
    return grant;
  },
});

const now = () => Math.floor(Date.now() / 1000);

async function spoil(idToken, attack) {
  const claims = decodeJwt(idToken);
  let jwk = active;
  let alg = 'RS256';
  switch (attack) {
    case 'wrong_nonce': claims.nonce = 'not-the-nonce'; break;
    case 'no_nonce': delete claims.nonce; break;
    case 'wrong_aud': claims.aud = 'someone-else'; break;
    case 'extra_aud': claims.aud = [claims.aud, 'someone-else']; break;
    case 'foreign_azp': claims.azp = 'someone-else'; break;
    case 'wrong_iss': claims.iss = 'http://127.0.0.1:1/other'; break;
    case 'expired': claims.exp = now() - 600; claims.iat = now() - 900; break;
    case 'future': claims.iat = now() + 900; claims.exp = now() + 1200; break;
    case 'not_yet': claims.nbf = now() + 900; break;
    case 'unknown_kid': jwk = config.foreign_jwk; break;
    // The provider's first key, which a rotation withdrew from its JWKS.
    case 'first_key': jwk = config.signing_jwk; break;
    // Signed again with the active key (after a rotation), nothing else changed.
    case 'resign': break;
    case 'none': {
      const enc = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
      return `${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims)}.`;
    }
    case 'bad_signature': {
      const [h, p, s] = idToken.split('.');
      const flipped = (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
      return `${h}.${p}.${flipped}`;
    }
    default: throw new Error(`unknown attack ${attack}`);
  }
  const key = await importJWK(jwk, alg);
  return new SignJWT(claims).setProtectedHeader({ alg, kid: jwk.kid, typ: 'JWT' }).sign(key);
}

provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/admin/rotate') {
    rotations += 1;
    active = await privateJwk(`op-key-${rotations + 1}`);
    ctx.body = { kid: active.kid };
    return;
  }
  await next();
  if (ctx.oidc?.route === 'token' && ctx.body?.id_token) {
    const sub = decodeJwt(ctx.body.id_token).sub;
    const attack = accounts[sub]?.attack ?? (rotations > 0 ? 'resign' : undefined);
    if (attack) ctx.body = { ...ctx.body, id_token: await spoil(ctx.body.id_token, attack) };
  }
  if (ctx.oidc?.route === 'jwks' && rotations > 0) {
    ctx.body = { keys: [publicJwk(active)] };
  }
});

provider.listen(config.port, '127.0.0.1', () => {
  process.stdout.write('listening\n');
});
