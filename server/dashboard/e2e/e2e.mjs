// The seed's Getting Started, steps 1–5, by clicking: playwright-core drives
// Debian's chromium against a built `agentkeys serve` (started by the Go
// test server/dashboard/e2e_test.go, which also runs the curl printed here).
// Env: AGENTKEYS_URL (the dashboard), UPSTREAM_HOST (host:port the
// credential may reach), CANARY (the credential's value, which no page may
// hold), SCREENSHOTS (a directory), CHROMIUM (default /usr/bin/chromium).
// Prints `e2e: RESULT {json}` with the token and the curl example, waits
// for "next" on stdin, revokes the assignment, prints `e2e: REVOKED`.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
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
  await page.getByLabel('Credential').selectOption({ label: 'Upstream' });
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
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  rmSync(profile2, { recursive: true, force: true });
}
