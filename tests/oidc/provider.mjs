// The health portal's stand-in for the sign-in tests: panva/oidc-provider (OpenID Certified), on loopback.
// usage: node provider.mjs PORT REDIRECT_URI CLIENT_SECRET
// Its development login page accepts any login and password; the account's claims come from ACCOUNTS below
// (an unknown login gets a name made from it). Prints "ready" once listening.
import Provider from "oidc-provider";

const [port, redirectUri, clientSecret] = process.argv.slice(2);
const ACCOUNTS = {
  "dr.bernard": { name: "Dr Luc Bernard", email: "luc.bernard@example.org", locale: "fr" },
  "nurse.lee": { name: "Ana Lee", email: "ana.lee@example.org", locale: "en" },
};

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: "passerelle",
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: [redirectUri.replace(/\/auth\/callback$/, "/login")],
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  pkce: { methods: ["S256"], required: () => true },
  claims: { openid: ["sub"], profile: ["name", "preferred_username", "locale"], email: ["email", "email_verified"] },
  async findAccount(ctx, id) {
    const known = ACCOUNTS[id] || { name: `Dr ${id}`, email: `${id}@example.org`, locale: "fr" };
    return {
      accountId: id,
      async claims() {
        return { sub: `portal-${id}`, preferred_username: id, email_verified: true, ...known };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["passerelle test provider cookie key"] },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 600, Grant: 600 },
});
provider.listen(Number(port), "127.0.0.1", () => console.log("ready"));
