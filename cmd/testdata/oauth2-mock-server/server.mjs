// oauth2-mock-server (pinned in package-lock.json) for the OAuth Connect
// end-to-end test of the built binary (cmd/oauth_e2e_test.go). It prints
// "listening URL" once up and "refresh N" for every refresh_token grant;
// while the file REVOKE_FILE exists, refreshes answer invalid_grant.
import fs from 'node:fs';
import { OAuth2Server } from 'oauth2-mock-server';

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
let refreshes = 0;
server.service.on('beforeResponse', (resp, req) => {
  if (req.body.grant_type !== 'refresh_token') return;
  refreshes++;
  console.log(`refresh ${refreshes}`);
  if (process.env.REVOKE_FILE && fs.existsSync(process.env.REVOKE_FILE)) {
    resp.statusCode = 400;
    resp.body = { error: 'invalid_grant' };
  }
});
await server.start(0, '127.0.0.1');
console.log(`listening ${server.issuer.url}`);
