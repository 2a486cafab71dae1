// The local OpenID provider of `amiflow up` and the tests: the real, OpenID-certified `oidc-provider`
// package (pinned by package-lock.json), configured here like ProConnect: code + PKCE, signed userinfo
// (RS256), acr/amr, siret claim, end_session. Its login page lists the people of amiflow's directory
// (a JSON file amiflow writes) and signs in the one you pick: no password, for development only.
//
//   node deploy/idp/provider.mjs [ISSUER]
//
// Environment: IDP_ISSUER (default http://127.0.0.1:9000; it also gives the port), IDP_CLIENT_ID,
// IDP_CLIENT_SECRET, IDP_REDIRECT_URIS and IDP_POST_LOGOUT_REDIRECT_URIS (separated by spaces or
// commas; default http://127.0.0.1:8000/auth/callback), IDP_PEOPLE_FILE (a JSON list of
// {sub, name, email, siret?, role?}), IDP_CODE_TTL (seconds an authorization code lives, default 60).
// Keys are generated at each start and never written. `amiflow up` starts it (amiflow/stack.py).

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import Provider from 'oidc-provider';

const env = process.env;
const issuer = process.argv[2] || env.IDP_ISSUER || 'http://127.0.0.1:9000';
const list = (text) => (text || '').split(/[\s,]+/).filter(Boolean);
const codeTtl = Number(env.IDP_CODE_TTL || 60);
const acrValues = ['eidas1', 'eidas2', 'eidas3'];

function people() {
  if (!env.IDP_PEOPLE_FILE) return [];
  try {
    const found = JSON.parse(readFileSync(env.IDP_PEOPLE_FILE, 'utf8'));
    return Array.isArray(found) ? found.filter((p) => p && typeof p.sub === 'string') : [];
  } catch {
    return [];
  }
}

const findPerson = (sub) => people().find((p) => p.sub === sub);

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
}

const escape = (text) => String(text ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>${escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}
button{display:block;width:100%;text-align:left;margin:.4rem 0;padding:.6rem;font-size:1rem;cursor:pointer}
small{color:#555}</style></head>
<body><h1>${escape(title)}</h1>${body}</body></html>`;
}

const configuration = {
  clients: [{
    client_id: env.IDP_CLIENT_ID || 'amiflow',
    client_secret: env.IDP_CLIENT_SECRET || 'amiflow-local-secret',
    redirect_uris: list(env.IDP_REDIRECT_URIS || 'http://127.0.0.1:8000/auth/callback'),
    post_logout_redirect_uris: list(env.IDP_POST_LOGOUT_REDIRECT_URIS),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    userinfo_signed_response_alg: 'RS256', // as ProConnect: userinfo answers a signed JWT
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: { keys: [signingKey()] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  acrValues,
  scopes: ['openid', 'email', 'profile', 'siret'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    siret: ['siret'],
    amr: null, // a claim of its own, asked through the claims parameter (ProConnect's RPs ask it)
  },
  features: {
    devInteractions: { enabled: false }, // the page below replaces it: pick a person of the directory
    claimsParameter: { enabled: true }, // ProConnect's RPs ask {"id_token": {"amr": {"essential": true}}}
    jwtUserinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource(ctx, form) {
        ctx.body = page('Se déconnecter', `${form}<p>Voulez-vous vous déconnecter du fournisseur d’identité local ?</p>
<button autofocus type="submit" form="op.logoutForm" name="logout" value="yes">Oui, me déconnecter</button>
<button type="submit" form="op.logoutForm">Non, rester connecté</button>`);
      },
      postLogoutSuccessSource(ctx) {
        ctx.body = page('Déconnecté', '<p>Vous êtes déconnecté.</p>');
      },
    },
  },
  ttl: {
    AuthorizationCode: codeTtl,
    AccessToken: 600,
    IdToken: 600,
    Interaction: 600,
    Session: 8 * 3600,
    Grant: 8 * 3600,
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // First-party client: no consent screen; the grant covers what the client asks.
  async loadExistingGrant(ctx) {
    const { client, session, result } = ctx.oidc;
    const grantId = result?.consent?.grantId || session.grantIdFor(client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    grant.addOIDCScope('openid email profile siret');
    grant.addOIDCClaims(['email', 'email_verified', 'name', 'siret', 'acr', 'amr']);
    await grant.save();
    return grant;
  },
  async findAccount(ctx, sub) {
    const person = findPerson(sub);
    if (!person) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          name: person.name,
          email: person.email,
          email_verified: Boolean(person.email),
          ...(person.siret ? { siret: person.siret } : {}),
        };
      },
    };
  },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Erreur', `<p>${escape(out.error)} : ${escape(out.error_description)}</p>`);
  },
};

const provider = new Provider(issuer, configuration);

async function body(req) {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > 10000) break;
  }
  return new URLSearchParams(text);
}

async function loginPage(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  const rows = people().map((p) => `<button type="submit" name="sub" value="${escape(p.sub)}">${escape(p.name)}
<small>${escape([p.role, p.email, p.siret && `SIRET ${p.siret}`].filter(Boolean).join(' · '))}</small></button>`);
  const client = escape(details.params.client_id);
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.end(page('Choisir une personne', `<p>Fournisseur d’identité local (développement) : choisissez qui se connecte à
<strong>${client}</strong>. Aucun mot de passe.</p>
<form method="post" action="/interaction/${escape(uid)}/login">${rows.join('\n') || '<p>L’annuaire est vide.</p>'}</form>
<form method="post" action="/interaction/${escape(uid)}/abort"><button type="submit">Annuler</button></form>`));
}

async function interaction(req, res, uid, action) {
  if (req.method === 'GET' && !action) return loginPage(req, res, uid);
  if (req.method !== 'POST') {
    res.statusCode = 405;
    return res.end();
  }
  const details = await provider.interactionDetails(req, res);
  if (action === 'abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'Connexion annulée',
    }, { mergeWithLastSubmission: false });
  }
  const sub = (await body(req)).get('sub');
  if (!sub || !findPerson(sub)) {
    res.statusCode = 400;
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    return res.end(page('Erreur', '<p>Personne inconnue de l’annuaire.</p>'));
  }
  const asked = list(details.params.acr_values).find((v) => acrValues.includes(v));
  return provider.interactionFinished(req, res, {
    login: { accountId: sub, acr: asked || acrValues[0], amr: ['pwd'] },
  }, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  const match = /^\/interaction\/([\w-]+)(?:\/(login|abort))?$/.exec(new URL(req.url, issuer).pathname);
  if (!match) return callback(req, res);
  try {
    return await interaction(req, res, match[1], match[2]);
  } catch (err) {
    res.statusCode = 400;
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    return res.end(page('Erreur', `<p>${escape(err.error_description || err.message)}</p>`));
  }
});

const { hostname, port } = new URL(issuer);
server.listen(Number(port) || 80, hostname, () => {
  console.log(`oidc-provider ${issuer} (client ${configuration.clients[0].client_id})`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
