// A real OpenID provider for the tests: the certified Node package `oidc-provider`
// (version pinned in package.json / package-lock.json), on loopback, with one static
// client (Tidings), a few accounts with claims and groups, and its development login
// screen (devInteractions: any password; the login is the account id).
//
// Environment: PORT, REDIRECT_URI, POST_LOGOUT_URI, CLIENT_SECRET. Started by
// tests/oidc_helpers.py; prints "ready <issuer>" once it listens.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;

// The directory of the test company: sub -> claims.
const ACCOUNTS = {
  alice: {
    preferred_username: 'alice', name: 'Alice Liddell', email: 'alice@example.test',
    email_verified: true, groups: ['staff', 'tidings-admins'], department: 'Engineering',
  },
  bob: {
    preferred_username: 'bob', name: 'Bob 王', email: 'bob@example.test',
    email_verified: true, groups: ['staff'], department: 'Sales',
  },
  'carol.external': {
    preferred_username: 'carol@partner.example', name: 'Carol', email: 'carol@partner.example',
    email_verified: false, groups: [],
  },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'tidings',
    client_secret: process.env.CLIENT_SECRET,
    redirect_uris: [process.env.REDIRECT_URI],
    post_logout_redirect_uris: [process.env.POST_LOGOUT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username', 'department'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false, // the claims in the ID token too, like Keycloak and Entra
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  cookies: { keys: ['tidings-test-provider-cookie-key'] },
  async findAccount(ctx, sub) {
    const claims = ACCOUNTS[sub];
    if (!claims) return undefined;
    return { accountId: sub, async claims() { return { sub, ...claims }; } };
  },
});
provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
