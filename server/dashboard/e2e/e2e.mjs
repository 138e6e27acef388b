// The seed's Getting Started, steps 1–5, by clicking: playwright-core drives
// Debian's chromium against a built `agentkeys serve` (started by the Go
// test server/dashboard/e2e_test.go, which also runs the curl printed here).
// Env: AGENTKEYS_URL (the dashboard), UPSTREAM_HOST (host:port the
// credential may reach), CANARY (the credential's value, which no page may
// hold), SCREENSHOTS (a directory), CHROMIUM (default /usr/bin/chromium).
// Prints `e2e: RESULT {json}` with the token and the curl example, waits
// for "next" on stdin, revokes the assignment, prints `e2e: REVOKED`, then
// `e2e: MEMBER` and `e2e: PASS`. Last it crawls every page reachable by
// links, as the owner and as a member (see crawl below), printing
// `e2e: WEIGHT <bytes> <page>` for each and `e2e: CRAWLED`.
import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const nextLine = async () => {
  const { value, done } = await lines.next();
  if (done || value.trim() !== 'next') throw new Error(`stdin: ${value}`);
};

const base = process.env.AGENTKEYS_URL;
const upstream = process.env.UPSTREAM_HOST;
const canary = process.env.CANARY;
const shots = process.env.SCREENSHOTS;
if (!base || !upstream || !canary || !shots) {
  console.error('e2e: set AGENTKEYS_URL, UPSTREAM_HOST, CANARY and SCREENSHOTS');
  process.exit(2);
}

const profile = mkdtempSync(join(tmpdir(), 'agentkeys-chromium-'));
const profile2 = mkdtempSync(join(tmpdir(), 'agentkeys-chromium-'));
// A browser on a fresh profile (--user-data-dir, which playwright takes as
// this argument).
const launch = (dir) => chromium.launchPersistentContext(dir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});

// axe-core's source, evaluated in each page through the DevTools protocol
// (page.evaluate), which the page's Content-Security-Policy does not
// govern: the policy stays as the server sends it, and a page of ours
// that broke it would show a console error.
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
// maxWeight is the budget for a page's first load: every response
// body (uncompressed) with the cache disabled.
const maxWeight = 150 * 1024;
// maxPages bounds a crawl, in case paging links make pages without end.
const maxPages = 60;

// shape names a page for the crawl: the path with ID-like segments as
// {id}, and the query's keys with their values kept only when they are
// words (type=COOKIE), not numbers, cursors or tokens. One page is visited
// per shape: one credential's edit page stands for all of them.
const shape = (u) => {
  const path = u.pathname.split('/').map((seg) => (/\d/.test(seg) && seg.length >= 8 ? '{id}' : seg)).join('/');
  const query = [...u.searchParams].map(([k, v]) => (/^[A-Za-z_-]{1,32}$/.test(v) ? `${k}=${v}` : `${k}=*`)).sort().join('&');
  return query ? `${path}?${query}` : path;
};
// shotName makes a file name of a shape: /settings/team → settings-team.
const shotName = (sh) => sh.replace(/^\//, '').replace(/[{}*]/g, '').replace(/[^A-Za-z0-9_]+/g, '-').replace(/-+$/, '').toLowerCase() || 'home';

// crawl visits, breadth first from /credentials, every same-origin page
// that a GET link (<a href>) on a visited page leads to — never /logout,
// never an asset, never a form — in a new page of the signed-in context
// ctx. On each: the answer and every request it makes is below 400 and no
// console error is logged; the HTML holds none of secrets; axe-core finds
// no serious or critical violation with the light and with the dark colour
// scheme; screenshots at 1280 and 390 px go to SCREENSHOTS as
// <prefix><page>-desktop.png and -phone.png; the first load (cache
// disabled) weighs at most maxWeight. It goes on past a failing page.
// Returns { weights: [[page, bytes], …], failures: ['page: what', …] }.
const crawl = async (ctx, prefix, secrets) => {
  const page = await ctx.newPage();
  const problems = [];
  const failures = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  let bodies = []; // body sizes of the current load
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`${r.status()} for ${r.url()}`);
    if (r.status() < 300 || r.status() >= 400) bodies.push(r.body().then((b) => b.length, () => 0));
  });
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });

  const origin = new URL(base).origin;
  const queue = [new URL('/credentials', base)];
  const done = new Set();
  const weights = [];
  while (queue.length) {
    const url = queue.shift();
    if (done.has(shape(url))) continue;
    done.add(shape(url));
    if (done.size > maxPages) throw new Error(`${prefix}crawl: more than ${maxPages} pages; is a link making new ones without end?`);
    bodies = [];
    const resp = await page.goto(url.href, { waitUntil: 'load' });
    const at = new URL(page.url());
    const sh = shape(at);
    if (sh !== shape(url)) { // a redirect: check the page it ends on once
      if (done.has(sh)) continue;
      done.add(sh);
    }
    const where = `${prefix}${sh}`;
    const fail = (msg) => failures.push(`${where}: ${msg}`);
    if (!resp || resp.status() >= 400) fail(`HTTP ${resp?.status()}`);
    if (at.pathname === '/login') fail(`sent to the log-in page from ${url.pathname}: the session ended`);
    const bytes = (await Promise.all(bodies)).reduce((a, b) => a + b, 0);
    weights.push([where, bytes]);
    if (bytes > maxWeight) fail(`weighs ${bytes} bytes on first load, over ${maxWeight}`);

    const html = await page.content();
    for (const s of secrets) if (html.includes(s)) fail(`holds a secret (${s.slice(0, 6)}…)`);

    // Every rule in the light scheme; in the dark one only those that
    // colours decide (half the time on CI's 2 cores).
    await page.evaluate(axeSource);
    for (const colorScheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme });
      const bad = await page.evaluate(async (only) => {
        const r = await window.axe.run(document, { resultTypes: ['violations'], ...(only ? { runOnly: only } : {}) });
        return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
          .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
      }, colorScheme === 'dark' ? ['color-contrast', 'link-in-text-block'] : null);
      if (bad.length) fail(`axe-core (${colorScheme}) found\n    ${bad.join('\n    ')}`);
    }
    await page.emulateMedia({ colorScheme: 'light' });
    const name = prefix + shotName(sh);
    await page.screenshot({ path: join(shots, `${name}-desktop.png`), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(shots, `${name}-phone.png`), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });

    for (const href of await page.locator('a[href]').evaluateAll((as) => as.map((a) => a.href))) {
      const next = new URL(href);
      next.hash = '';
      if (next.origin !== origin || next.pathname === '/logout' || next.pathname.startsWith('/assets/')) continue;
      if (!done.has(shape(next))) queue.push(next);
    }
    if (problems.length) fail(`\n    ${problems.splice(0).join('\n    ')}`);
  }
  await page.close();
  return { weights, failures };
};

// signedInContext logs email in, in a browser on a fresh profile.
const signedInContext = async (dir, email, password) => {
  const ctx = await launch(dir);
  const p = ctx.pages()[0] ?? await ctx.newPage();
  await p.goto(base + '/login');
  await p.getByLabel('Email').fill(email);
  await p.getByLabel('Password').fill(password);
  await p.getByRole('button', { name: 'Log in' }).click();
  await p.waitForURL((u) => !u.pathname.startsWith('/login'));
  return ctx;
};

// apiPost calls the REST API (with the workspace key when given) and
// returns the JSON of its 201.
const apiPost = async (path, body, key) => {
  const r = await fetch(base + path, { method: 'POST', body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) } });
  if (r.status !== 201) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
};

const profile3 = mkdtempSync(join(tmpdir(), 'agentkeys-chromium-'));
const context = await launch(profile);
const problems = [];
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} for ${r.url()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

  // Every page: no canary in the HTML, then a screenshot at desktop and phone width.
  const seen = async (name) => {
    const html = await page.content();
    if (html.includes(canary)) throw new Error(`page ${name} holds the credential's value`);
    await page.screenshot({ path: join(shots, `${name}-desktop.png`), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(shots, `${name}-phone.png`), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
  };

  // 1. Create an account.
  await page.goto(base + '/');
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  await seen('login');
  await page.getByRole('link', { name: 'Sign up' }).click();
  await page.getByLabel('Email').fill('ada@example.com');
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByLabel('Workspace name').fill('Acme');
  await seen('signup');
  await page.getByRole('button', { name: 'Sign up' }).click();
  const apiKey = (await page.locator('#api-key').textContent()).trim();
  if (!apiKey.startsWith('ak_ws_')) throw new Error(`welcome page shows ${apiKey}`);
  await seen('welcome');

  // 2. Go to Credentials and click Add Credential.
  await page.getByRole('link', { name: 'Credentials' }).click();
  await page.getByRole('heading', { name: 'Credentials' }).waitFor();
  await page.getByRole('link', { name: 'Add Credential' }).click();
  await page.getByLabel('Name').fill('Upstream');
  await page.getByLabel('API key').fill(canary);
  await page.getByLabel(/Allowed hosts/).fill(upstream);
  await seen('add-credential');
  await page.getByRole('button', { name: 'Add Credential' }).click();
  await page.getByRole('cell', { name: 'Upstream', exact: true }).waitFor();
  await page.getByRole('cell', { name: upstream, exact: true }).waitFor();
  await seen('credentials');

  // 3. Go to Agents and click Create Agent.
  await page.getByRole('link', { name: 'Agents' }).click();
  await page.getByLabel('New agent name').fill('marketing-bot');
  await page.getByRole('button', { name: 'Create Agent' }).click();
  await page.getByRole('heading', { name: 'marketing-bot' }).waitFor();

  // 4. Click Assign Credential on the agent and select the credential.
  await page.getByLabel('Credential', { exact: true }).selectOption({ label: 'Upstream' });
  await seen('agents');
  await page.getByRole('button', { name: 'Assign Credential' }).click();
  const token = (await page.locator('#proxy-token').textContent()).trim();
  const curl = await page.locator('#curl-example').textContent();
  if (!token.startsWith('pxr_') || !curl.includes(token)) throw new Error(`token page: ${token} / ${curl}`);
  await seen('token');

  // Shown once: back on Agents the token is gone and the assignment is listed.
  await page.getByRole('link', { name: 'Done' }).click();
  await page.getByRole('listitem').getByText('Upstream', { exact: true }).waitFor();
  if ((await page.content()).includes(token)) throw new Error('the agents page shows the token again');
  await seen('agents-assigned');

  // Keyboard: Tab from the top reaches the nav's first link.
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement?.textContent?.trim());
  if (focused !== 'Credentials') throw new Error(`second Tab focuses ${focused}, want the Credentials link`);

  if (problems.length) throw new Error(problems.join('\n'));
  console.log('e2e: RESULT ' + JSON.stringify({ token, curl }));

  // The Go test runs the curl, then says "next" on stdin: revoke the
  // assignment in the UI (it then checks the token is refused).
  await nextLine();
  await page.getByRole('button', { name: 'Revoke Upstream from marketing-bot' }).click();
  await page.getByText('No credentials assigned.').waitFor();
  if (problems.length) throw new Error(problems.join('\n'));
  console.log('e2e: REVOKED');

  // A member, invited on Settings → Team by clicking (no SMTP: the page
  // shows the invitation link once), accepts it in a second browser
  // context by setting a password and is signed in: the actions their role
  // lacks are absent, and a delete they forge anyway is refused by the
  // server.
  const credId = await page.locator('select[name=credentialId] option').first().getAttribute('value');
  await page.getByRole('link', { name: 'Settings' }).click();
  await page.getByRole('heading', { name: 'Team', exact: true }).waitFor();
  await page.getByLabel('Email', { exact: true }).fill('max@example.com');
  await page.getByLabel('Role', { exact: true }).selectOption('member');
  await page.getByRole('button', { name: 'Invite', exact: true }).click();
  const acceptUrl = (await page.locator('#invite-link').textContent()).trim();
  if (!acceptUrl.startsWith(base + '/invitations/accept?token=inv_')) throw new Error(`team page shows the link ${acceptUrl}`);
  await page.getByRole('cell', { name: 'max@example.com', exact: true }).waitFor();
  await seen('team');
  const second = await launch(profile2);
  const mpage = second.pages()[0] ?? await second.newPage();
  await mpage.goto(acceptUrl);
  await mpage.getByRole('heading', { name: 'Join Acme' }).waitFor();
  await mpage.getByLabel('Password').fill('correct horse battery');
  await mpage.screenshot({ path: join(shots, 'accept-invitation-desktop.png'), fullPage: true });
  await mpage.getByRole('button', { name: 'Accept invitation' }).click();
  await mpage.getByRole('heading', { name: 'Welcome to Acme' }).waitFor();
  await mpage.getByRole('link', { name: 'Credentials', exact: true }).click();
  await mpage.getByRole('cell', { name: 'Upstream', exact: true }).waitFor();
  if (await mpage.getByRole('link', { name: 'Add Credential' }).count() || await mpage.getByRole('link', { name: /^Delete/ }).count()) {
    throw new Error('a member is offered Add Credential or Delete');
  }
  await mpage.screenshot({ path: join(shots, 'member-credentials-desktop.png'), fullPage: true });
  const csrf = await mpage.locator('input[name=csrf]').first().getAttribute('value');
  const created = await mpage.request.post(base + '/agents', { form: { name: 'made-by-member', csrf } });
  if (created.status() !== 200 || !(await created.text()).includes('made-by-member')) throw new Error(`member create agent: ${created.status()}`);
  const del = await mpage.request.post(base + `/credentials/${credId}/delete`, { form: { csrf } });
  if (del.status() !== 403 || !(await del.text()).includes('credentials:delete')) throw new Error(`member delete: ${del.status()}`);
  await mpage.goto(base + '/credentials');
  await mpage.getByRole('cell', { name: 'Upstream', exact: true }).waitFor();
  await second.close();
  console.log('e2e: MEMBER');
  console.log('e2e: PASS');

  // Every page reachable by links, as the owner, then as a member of
  // their own (invited through the API) in a third browser.
  // Both crawls run, whatever the first found; then every failure is told.
  const secrets = [canary, token, apiKey];
  const { weights, failures } = await crawl(context, '', secrets);
  const inv3 = await apiPost('/api/v1/invitations', { email: 'crawl-member@example.com', role: 'member' }, apiKey);
  await apiPost('/api/v1/invitations/accept', { token: new URL(inv3.acceptUrl).searchParams.get('token'), password: 'correct horse battery' });
  const third = await signedInContext(profile3, 'crawl-member@example.com', 'correct horse battery');
  try {
    const member = await crawl(third, 'member-', secrets);
    weights.push(...member.weights);
    failures.push(...member.failures);
  } finally {
    await third.close();
  }
  for (const [where, bytes] of weights) console.log(`e2e: WEIGHT ${bytes} ${where}`);
  if (failures.length) throw new Error(`${failures.length} failures in the crawl:\n${failures.join('\n')}`);
  console.log(`e2e: CRAWLED ${weights.length} pages`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  rmSync(profile2, { recursive: true, force: true });
  rmSync(profile3, { recursive: true, force: true });
}
