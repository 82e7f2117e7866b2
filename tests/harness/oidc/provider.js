// A real OpenID Connect provider for tests/test_oidc.py: panva's oidc-provider, configured by
// tests/harness/oidc.py through the environment. Its own development login pages (devInteractions)
// take any username and password: the username is the subject.
//
//   OIDC_PORT, OIDC_ISSUER        where it listens, and the issuer it names
//   OIDC_CLIENTS                  JSON list of clients (client_id, client_secret, redirect_uris...)
//   OIDC_JWKS                     a file with the private JWKS it signs with (rotation: restart with another)
//   OIDC_AUDIENCE                 the API's audience: access tokens for it are JWTs
//   OIDC_SHORT_CLIENT             a client whose client-credentials tokens live 2 seconds
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const env = process.env;
const jwks = JSON.parse(readFileSync(env.OIDC_JWKS, 'utf8'));

const provider = new Provider(env.OIDC_ISSUER, {
  clients: JSON.parse(env.OIDC_CLIENTS),
  jwks,
  cookies: { keys: ['tests-only-cookie-key'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username', 'name'] },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@example.com`, email_verified: true, preferred_username: id, name: id };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => env.OIDC_AUDIENCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => ({
        scope: 'counters',
        audience: resourceIndicator,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    ClientCredentials: (ctx, token, client) => (client.clientId === env.OIDC_SHORT_CLIENT ? 2 : 600),
    Grant: 600,
    IdToken: 600,
    Interaction: 600,
    Session: 600,
  },
  pkce: { required: () => true },
});

provider.listen(Number(env.OIDC_PORT), '127.0.0.1', () => {
  console.log(`listening ${env.OIDC_ISSUER}`);
});
