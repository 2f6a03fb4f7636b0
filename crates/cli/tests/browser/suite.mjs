// The web UI in headless Chromium (Debian's), driven by playwright-core, against a
// real Logbook server that crates/cli/tests/ui/browser.rs started. Data is written
// through the public API, as another client would; the browser only uses the UI.
//
// Environment: LOGBOOK_URL, LOGBOOK_ADMIN_PASSWORD, LOGBOOK_ADMIN_TOKEN,
// CHROMIUM (executable), NODE_MODULES (where playwright-core is installed),
// SCREENSHOTS (a folder). Prints `timing ...` and `size ...` lines for the report.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env('LOGBOOK_URL');
const ADMIN_PASSWORD = env('LOGBOOK_ADMIN_PASSWORD');
const ADMIN_TOKEN = env('LOGBOOK_ADMIN_TOKEN');
const SHOTS = env('SCREENSHOTS');
const { chromium } = createRequire(path.join(env('NODE_MODULES'), 'x.js'))('playwright-core');

const ACME_USER = 'acme-operator';
const ACME_PASSWORD = 'acme-password-123';
const MINUTE = 60e3;

// ---------------------------------------------------------------- the API client

async function api(method, route, body, token = ADMIN_TOKEN) {
  const response = await fetch(BASE + route, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${text}`);
  return parsed;
}

async function write(records) {
  const answer = await api('POST', '/logbook/v1/records', records);
  const ids = [];
  for (let id = answer.first_id; id <= answer.last_id; id++) ids.push(id);
  return ids;
}

// ------------------------------------------------- a TCP proxy the test can cut

function proxy(target) {
  const url = new URL(target);
  const sockets = new Set();
  let blocked = false;
  const server = net.createServer((client) => {
    if (blocked) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(url.port), url.hostname);
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const done = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', done);
      s.on('close', done);
    }
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({
      url: `http://127.0.0.1:${server.address().port}`,
      /** Drops every connection and refuses new ones until `heal`. */
      cut() {
        blocked = true;
        for (const s of sockets) s.destroy();
      },
      heal() {
        blocked = false;
      },
      close: () => new Promise((r) => server.close(r)),
    }));
  });
}

// ------------------------------------------------------------------ the browser

let browser;
let proxied;
const seed = {};
const timings = [];

before(async () => {
  const now = Date.now();
  // A domain user, and data in two domains with markers in their messages.
  await api('POST', '/logbook/v1/users', { name: ACME_USER, role: 'user', domain: 'acme', password: ACME_PASSWORD });
  const records = [];
  for (let i = 0; i < 60; i++) {
    records.push({
      kind: 'log',
      ts: new Date(now - 50 * MINUTE + i * 40e3).toISOString(),
      level: ['INFO', 'WARN', 'ERROR', 'INFO', 'DEBUG'][i % 5],
      category: i % 3 === 0 ? 'image' : 'network',
      source: i % 2 ? 'registry' : 'scheduler',
      instance: `node-${i % 4}`,
      user: `user${i % 6}`,
      message: i % 4 === 0 ? `default-only image pull timeout #${i}` : `default-only reconciled #${i}`,
      data: { attempt: i, labels: { team: 'infra', tier: i % 2 ? 'web' : 'db' } },
    });
  }
  seed.defaults = records;
  seed.defaultIds = await write(records);
  seed.acmeIds = await write([0, 1, 2, 3].map((i) => ({
    kind: 'log', level: 'INFO', category: 'image', domain_id: 'acme', source: 'acme-agent',
    ts: new Date(now - 20 * MINUTE + i * 1000).toISOString(), message: `acme-only line #${i}`,
  })));
  // Objects: a tree in the default domain, one node of acme's.
  await api('PUT', '/logbook/v1/objects/stack/shop', { name: 'shop', state: 'Running', uri: '/api/app/v1/stack/shop/' });
  await api('PUT', '/logbook/v1/objects/service/web', { name: 'web', state: 'Running', uri: '/api/app/v1/service/web/', parent: { type: 'stack', id: 'shop' } });
  await api('PUT', '/logbook/v1/objects/container/web-1', { name: 'web-1', state: 'Stopped', parent: { type: 'service', id: 'web' }, attributes: { image: 'nginx:1.27' } });
  await api('PUT', '/logbook/v1/objects/node/acme-node', { name: 'acme-node', state: 'Deployed', domain_id: 'acme' });
  // Actions: one running and cancelable, finished ones, and acme's own.
  seed.redeploy = await api('POST', '/logbook/v1/actions', {
    action: 'Service Redeploy', object: '/api/app/v1/service/web/', method: 'POST', path: '/api/app/v1/service/web/redeploy/',
    can_be_canceled: true, can_be_retried: true, start_date: new Date(now - 3 * MINUTE).toISOString(),
  });
  await api('POST', `/logbook/v1/actions/${seed.redeploy.uuid}/logs`, [{ log: 'pulling nginx:1.27' }, { log: 'stopping web-1' }]);
  await api('POST', '/logbook/v1/actions', { action: 'Stack Start', object: '/api/app/v1/stack/shop/', state: 'Success', start_date: new Date(now - 30 * MINUTE).toISOString(), end_date: new Date(now - 29 * MINUTE).toISOString() });
  await api('POST', '/logbook/v1/actions', { action: 'Image Pull', state: 'Failed', can_be_retried: true, start_date: new Date(now - 20 * MINUTE).toISOString(), end_date: new Date(now - 19 * MINUTE).toISOString() });
  seed.acmeAction = await api('POST', '/logbook/v1/actions', { action: 'Acme Backup', domain_id: 'acme', start_date: new Date(now - 10 * MINUTE).toISOString() });

  fs.mkdirSync(SHOTS, { recursive: true });
  proxied = await proxy(BASE);
  browser = await chromium.launch({
    executablePath: env('CHROMIUM'),
    headless: true,
    // Playwright gives every launch a new, empty profile directory of its own.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (proxied) await proxied.close();
  for (const t of timings) console.log(`timing ${t.name}: ${t.ms} ms`);
});

async function newPage({ base = BASE, colorScheme = 'light', viewport = { width: 1400, height: 900 } } = {}) {
  const context = await browser.newContext({ viewport, colorScheme, acceptDownloads: true });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    // A 401 before signing in is how the page learns there is no session.
    if (m.type() === 'error' && !/401/.test(m.text())) errors.push(m.text());
  });
  page.errors = errors;
  page.base = base;
  return page;
}

async function signIn(page, user = 'admin', password = ADMIN_PASSWORD, route = '/') {
  await page.goto(page.base + route);
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

/** Runs `act` and waits for the search it starts to render; returns its time. */
async function searched(page, act, name) {
  await page.evaluate(() => { document.body.dataset.searchState = 'stale'; });
  await act();
  await page.waitForFunction(() => document.body.dataset.searchState === 'done');
  const ms = Number(await page.evaluate(() => document.body.dataset.searchMs));
  if (name) timings.push({ name, ms });
  return ms;
}

const rowIds = (page) => page.locator('.results .row').evaluateAll((rows) => rows.map((r) => Number(r.dataset.id)));
const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
const sorted = (ids) => [...ids].sort((a, b) => a - b);

/** No script error and no failed request, but those the test itself caused. */
function noErrors(page, expected = []) {
  const unexpected = page.errors.filter((e) => !expected.some((pattern) => pattern.test(e)));
  assert.deepEqual(unexpected, [], 'the page logged errors');
}

// ------------------------------------------------------------------------ tests

test('the pages load within the size target, with a strict CSP and no inline script', async () => {
  const page = await newPage();
  const response = await page.goto(`${BASE}/`);
  const csp = response.headers()['content-security-policy'];
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  const bytes = await page.evaluate(() => {
    const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
    return entries.filter((e) => !e.name.includes('/logbook/v1/')).reduce((sum, e) => sum + e.transferSize, 0);
  });
  console.log(`size first load (HTML, JS, CSS, icon; gzip, with headers): ${bytes} bytes`);
  assert.ok(bytes > 0 && bytes <= 200 * 1024, `first load is ${bytes} bytes`);
  assert.equal(await page.locator('script:not([src])').count(), 0);
  await shot(page, 'signin');
  noErrors(page);
  await page.context().close();
});

test('sign in with a user name and password, and sign out', async () => {
  const page = await newPage();
  await page.goto(`${BASE}/`);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'Wrong user name or password' }).waitFor();
  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  await searched(page, () => page.getByRole('button', { name: 'Sign in' }).click(), 'first search after sign-in');
  await page.getByRole('searchbox', { name: 'Search' }).waitFor();
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'logbook_session');
  assert.ok(session && session.httpOnly && session.sameSite === 'Lax', JSON.stringify(cookies));
  await shot(page, 'signed-in');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  const who = await page.evaluate(async () => (await fetch('/logbook/v1/whoami')).status);
  assert.equal(who, 401, 'the session ended');
  noErrors(page);
  await page.context().close();
});

test('search with a filter and a substring shows exactly the matching records, and the URL reproduces it', async () => {
  const page = await newPage();
  await signIn(page);
  const box = page.getByRole('searchbox', { name: 'Search' });
  await searched(page, async () => {
    await box.fill('PULL TIMEOUT');
    await box.press('Enter');
  }, 'substring search');
  // Values are suggested from the data of the current search.
  await page.getByLabel('Field').selectOption('category');
  await page.getByLabel('Value').focus();
  await page.waitForFunction(() => [...document.querySelectorAll('#value-suggestions option')].map((o) => o.value).sort().join() === 'image,network');
  await searched(page, async () => {
    await page.getByLabel('Value').fill('image');
    await page.getByRole('button', { name: 'Add filter' }).click();
  }, 'substring and category');
  const expected = seed.defaultIds.filter((id, i) => seed.defaults[i].category === 'image' && /pull timeout/i.test(seed.defaults[i].message));
  assert.ok(expected.length >= 3);
  assert.deepEqual(sorted(await rowIds(page)), expected);
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('q'), 'PULL TIMEOUT');
  assert.equal(url.searchParams.get('category'), 'image');

  // Levels as toggles: only ERROR and WARN.
  await searched(page, () => page.getByRole('button', { name: 'ERROR', exact: true }).click(), 'level toggle');
  await searched(page, () => page.getByRole('button', { name: 'WARN', exact: true }).click());
  const leveled = expected.filter((id) => ['ERROR', 'WARN'].includes(seed.defaults[seed.defaultIds.indexOf(id)].level));
  assert.deepEqual(sorted(await rowIds(page)), leveled);
  assert.equal(new URL(page.url()).searchParams.get('level'), 'ERROR,WARN');
  await shot(page, 'search-filtered');

  // The link alone, in another browser profile, reproduces the search.
  const link = page.url();
  const other = await newPage();
  await other.goto(`${BASE}/`);
  await signIn(other, 'admin', ADMIN_PASSWORD, new URL(link).pathname + new URL(link).search);
  await other.waitForFunction(() => document.body.dataset.searchState === 'done');
  assert.deepEqual(sorted(await rowIds(other)), leveled);
  assert.equal(await other.getByRole('searchbox', { name: 'Search' }).inputValue(), 'PULL TIMEOUT');

  // Oldest first reverses the list.
  await searched(page, () => page.getByRole('button', { name: 'Newest first' }).click());
  assert.deepEqual(await rowIds(page), sorted(leveled));
  noErrors(page);
  await page.context().close();
  await other.context().close();
});

test('more records load on scroll, through the cursor, none twice', async () => {
  const page = await newPage();
  await signIn(page);
  const marker = `scroll-marker-${Date.now()}`;
  const written = await write(Array.from({ length: 230 }, (_, i) => ({ kind: 'log', level: 'INFO', message: `${marker} #${i}` })));
  await searched(page, async () => {
    const box = page.getByRole('searchbox', { name: 'Search' });
    await box.fill(marker);
    await box.press('Enter');
  });
  assert.equal((await rowIds(page)).length, 100);
  for (const expected of [200, 230]) {
    await page.locator('.results-scroll').evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await page.waitForFunction((n) => document.querySelectorAll('.results .row').length === n, expected);
  }
  assert.deepEqual(await rowIds(page), [...written].reverse());
  assert.ok(await page.getByRole('button', { name: 'Load more' }).isHidden(), 'the last page ends the list');
  noErrors(page);
  await page.context().close();
});

test('the histogram bars sum to the count, and dragging across it narrows the range', async () => {
  const page = await newPage();
  await signIn(page);
  await searched(page, () => page.getByLabel('Time range').selectOption('1h'));
  await searched(page, async () => {
    const box = page.getByRole('searchbox', { name: 'Search' });
    await box.fill('default-only');
    await box.press('Enter');
  }, 'histogram search');
  const bars = () => page.locator('.histogram g.bucket').evaluateAll((gs) => gs.map((g) => Number(g.dataset.count)));
  const sum = (await bars()).reduce((a, b) => a + b, 0);
  const total = Number(await page.locator('.summary .total').getAttribute('data-total'));
  assert.equal(sum, seed.defaultIds.length);
  assert.equal(total, seed.defaultIds.length);
  await shot(page, 'histogram');

  // Drag over the middle third of the chart.
  const box = await page.locator('.histogram svg').boundingBox();
  await searched(page, async () => {
    await page.mouse.move(box.x + box.width * 0.35, box.y + 30);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, box.y + 40, { steps: 5 });
    await page.mouse.move(box.x + box.width * 0.65, box.y + 40, { steps: 5 });
    await page.mouse.up();
  }, 'histogram drag');
  const url = new URL(page.url());
  const since = url.searchParams.get('since');
  const until = url.searchParams.get('until');
  assert.ok(since && until, page.url());
  const inRange = seed.defaultIds.filter((id, i) => {
    const ts = Date.parse(seed.defaults[i].ts);
    return ts >= Date.parse(since) && ts <= Date.parse(until);
  });
  assert.ok(inRange.length > 0 && inRange.length < seed.defaultIds.length, `${inRange.length} in ${since}..${until}`);
  const narrowed = (await bars()).reduce((a, b) => a + b, 0);
  assert.equal(narrowed, inRange.length);
  const counted = await api('GET', `/logbook/v1/records/count?q=default-only&since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}`);
  assert.equal(counted.count, inRange.length);
  assert.deepEqual(sorted(await rowIds(page)), inRange);
  assert.equal(await page.getByLabel('Time range').inputValue(), 'custom');
  noErrors(page);
  await page.context().close();
});

test('a record opens in the panel with its context, and adds filters to the search', async () => {
  const page = await newPage();
  await signIn(page);
  await searched(page, async () => {
    const box = page.getByRole('searchbox', { name: 'Search' });
    await box.fill('default-only');
    await box.press('Enter');
  });
  // Record #20: scheduler, node-0. Its context is the scheduler/node-0 records around it.
  const index = 20;
  const id = seed.defaultIds[index];
  await page.locator(`.results .row[data-id="${id}"]`).click();
  const panel = page.getByRole('complementary', { name: 'Record' });
  await panel.locator('.context-list').waitFor();
  await panel.getByText(seed.defaults[index].message, { exact: true }).first().waitFor();
  const same = seed.defaultIds.filter((_, i) => seed.defaults[i].source === 'scheduler' && seed.defaults[i].instance === 'node-0');
  const at = same.indexOf(id);
  const context = await panel.locator('.context-list li').evaluateAll((lis) => lis.map((li) => Number(li.dataset.id)));
  assert.deepEqual(context, same.slice(Math.max(0, at - 10), at + 11));
  // data as a tree, every field, a permalink.
  await panel.locator('.json').getByText('"infra"').waitFor();
  assert.equal(await panel.locator('tr[data-field="instance"] td').first().innerText(), 'node-0');
  assert.match(await panel.getByLabel('Permalink').inputValue(), new RegExp(`/\\?record=${id}$`));
  assert.equal(new URL(page.url()).searchParams.get('record'), String(id));
  await shot(page, 'record-panel');

  // "source = scheduler" from the panel.
  await searched(page, () => panel.getByRole('button', { name: 'Filter source = scheduler' }).click(), 'filter from panel');
  assert.equal(new URL(page.url()).searchParams.get('source'), 'scheduler');
  await page.getByRole('button', { name: 'Remove filter source = scheduler' }).waitFor();
  const schedulers = seed.defaultIds.filter((_, i) => seed.defaults[i].source === 'scheduler');
  assert.deepEqual(sorted(await rowIds(page)), schedulers);
  // "instance != node-0" from the panel.
  await searched(page, () => panel.getByRole('button', { name: 'Exclude instance = node-0' }).click());
  assert.equal(new URL(page.url()).searchParams.get('not_instance'), 'node-0');
  assert.deepEqual(sorted(await rowIds(page)), seed.defaultIds.filter((_, i) => seed.defaults[i].source === 'scheduler' && seed.defaults[i].instance !== 'node-0'));

  // Esc closes the panel; `/` focuses the search box.
  await page.keyboard.press('Escape');
  await panel.waitFor({ state: 'hidden' });
  assert.equal(new URL(page.url()).searchParams.get('record'), null);
  await page.locator('body').click({ position: { x: 5, y: 300 } });
  await page.keyboard.press('/');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Search');

  // The permalink alone opens the record.
  const direct = await newPage();
  await signIn(direct, 'admin', ADMIN_PASSWORD, `/?record=${id}`);
  await direct.getByRole('complementary', { name: 'Record' }).getByRole('heading', { name: `Record ${id}` }).waitFor();
  noErrors(page);
  await page.context().close();
  await direct.context().close();
});

test('export of the current search as CSV and NDJSON', async () => {
  const page = await newPage();
  await signIn(page);
  await searched(page, async () => {
    const box = page.getByRole('searchbox', { name: 'Search' });
    await box.fill('pull timeout');
    await box.press('Enter');
  });
  const expected = seed.defaultIds.filter((_, i) => /pull timeout/i.test(seed.defaults[i].message));
  const download = async (name) => {
    const [file] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name }).click()]);
    return fs.readFileSync(await file.path(), 'utf8');
  };
  const ndjson = (await download('NDJSON')).trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(ndjson.map((r) => r.id), sorted(expected));
  const csv = (await download('CSV')).trim().split(/\r?\n/);
  assert.match(csv[0], /^id,ts,kind,level/);
  assert.equal(csv.length - 1, expected.length);
  noErrors(page);
  await page.context().close();
});

test('live follows new records while another client writes, pauses while reading, and resumes after the stream is cut', async () => {
  const page = await newPage({ base: proxied.url });
  await signIn(page);
  const marker = `live-marker-${Date.now()}`;
  const line = (i) => ({ kind: 'log', level: 'INFO', source: 'live-test', message: `${marker} #${i}` });
  const before = await write(Array.from({ length: 80 }, (_, i) => line(i)));
  await searched(page, async () => {
    const box = page.getByRole('searchbox', { name: 'Search' });
    await box.fill(marker);
    await box.press('Enter');
  });
  await searched(page, () => page.getByRole('switch', { name: 'Live' }).check());
  assert.equal(new URL(page.url()).searchParams.get('live'), '1');
  await page.waitForFunction(() => document.querySelector('.live-status').dataset.state === 'live');
  const firstPage = (await rowIds(page)).length;

  // Another client writes: the records appear on top, newest first.
  const wave1 = await write([80, 81, 82].map(line));
  await page.waitForFunction((n) => document.querySelectorAll('.results .row').length === n, firstPage + 3);
  assert.deepEqual((await rowIds(page)).slice(0, 3), [...wave1].reverse());

  // The stream is cut and stays down while more is written; then it comes back.
  proxied.cut();
  await page.waitForFunction(() => document.querySelector('.live-status').dataset.state === 'reconnecting');
  const wave2 = await write([83, 84, 85, 86].map(line));
  proxied.heal();
  await page.waitForFunction((n) => document.querySelectorAll('.results .row').length === n, firstPage + 7);
  await page.waitForFunction(() => document.querySelector('.live-status').dataset.state === 'live');
  const ids = await rowIds(page);
  assert.deepEqual(ids.slice(0, 7), [...wave1, ...wave2].reverse(), 'nothing lost or repeated');
  assert.equal(new Set(ids).size, ids.length, 'no record twice');
  assert.ok(Number(await page.locator('.live-status').getAttribute('data-reconnects')) >= 1);

  // Scrolled down to read: new records wait, and the page says how many.
  await page.locator('.results-scroll').evaluate((el) => { el.scrollTop = 400; });
  const wave3 = await write([87, 88].map(line));
  const banner = page.locator('.live-banner');
  await page.waitForFunction(() => document.querySelector('.live-banner').dataset.pending === '2');
  assert.match(await banner.innerText(), /2 new records/);
  assert.equal((await rowIds(page)).length, firstPage + 7, 'nothing inserted while reading');
  await shot(page, 'live-paused');
  await banner.click();
  await page.waitForFunction((n) => document.querySelectorAll('.results .row').length === n, firstPage + 9);
  assert.deepEqual((await rowIds(page)).slice(0, 2), [...wave3].reverse());
  assert.ok(before.length === 80);
  await shot(page, 'live');
  // The cut connections, and the attempts refused while it lasted.
  noErrors(page, [/net::ERR_(INCOMPLETE_CHUNKED_ENCODING|CONNECTION_\w+|EMPTY_RESPONSE|SOCKET_NOT_CONNECTED)/]);
  await page.context().close();
});

test("an action's live log and its cancel", async () => {
  const page = await newPage();
  await signIn(page, 'admin', ADMIN_PASSWORD, '/actions');
  const board = page.getByRole('table', { name: 'Actions' });
  await board.getByRole('row', { name: 'Service Redeploy In progress' }).click();
  const panel = page.getByRole('complementary', { name: 'Action' });
  const log = panel.getByRole('list', { name: 'Log' });
  await log.getByText('stopping web-1').waitFor();
  await page.waitForFunction(() => document.querySelector('.log-status').dataset.state === 'live');
  // Another client (the platform) logs a line while the user watches.
  await api('POST', `/logbook/v1/actions/${seed.redeploy.uuid}/logs`, { log: 'starting web-1 with nginx:1.27' });
  await log.getByText('starting web-1 with nginx:1.27').waitFor();
  assert.deepEqual(await log.locator('.line').allInnerTexts(), ['pulling nginx:1.27', 'stopping web-1', 'starting web-1 with nginx:1.27']);
  await shot(page, 'actions');
  await panel.getByRole('button', { name: 'Cancel' }).click();
  await panel.locator('.state-canceling').first().waitFor();
  const stored = await api('GET', `/logbook/v1/actions/${seed.redeploy.uuid}`);
  assert.equal(stored.state, 'Canceling');
  await board.getByRole('row', { name: 'Service Redeploy Canceling' }).waitFor();
  // Finished by the platform: the live log ends, and retry is offered.
  await api('PATCH', `/logbook/v1/actions/${seed.redeploy.uuid}`, { state: 'Canceled' });
  await page.waitForFunction(() => document.querySelector('.log-status').dataset.state === 'closed');
  await panel.getByRole('button', { name: 'Retry' }).waitFor();
  await shot(page, 'actions-canceled');
  noErrors(page);
  await page.context().close();
});

test('the object tree, and an object with its records and actions', async () => {
  const page = await newPage();
  await signIn(page, 'admin', ADMIN_PASSWORD, '/objects');
  const tree = page.getByRole('tree', { name: 'Objects' });
  await tree.getByRole('button', { name: 'Children of stack/shop' }).click();
  await tree.getByRole('button', { name: 'Children of service/web' }).click();
  await tree.getByRole('treeitem').filter({ hasText: 'web-1' }).getByRole('button', { name: /container web-1/ }).click();
  const panel = page.getByRole('complementary', { name: 'Object' });
  await panel.getByRole('navigation', { name: 'Ancestors' }).getByRole('link', { name: 'stack/shop' }).waitFor();
  await panel.getByText('Stopped').first().waitFor();
  await panel.getByText('object container/web-1 updated').waitFor();
  await panel.locator('.json').getByText('"nginx:1.27"').waitFor();
  await shot(page, 'objects');
  noErrors(page);
  await page.context().close();
});

test("a domain user sees none of another domain's records, actions or objects", async () => {
  const page = await newPage();
  await signIn(page, ACME_USER, ACME_PASSWORD, '/?q=-only&range=all');
  await page.waitForFunction(() => document.body.dataset.searchState === 'done');
  assert.deepEqual(sorted(await rowIds(page)), seed.acmeIds);
  assert.equal(await page.getByText('default-only').count(), 0);
  assert.equal(Number(await page.locator('.summary .total').getAttribute('data-total')), seed.acmeIds.length);
  await shot(page, 'domain-user-search');

  await page.getByRole('link', { name: 'Actions' }).click();
  const board = page.getByRole('table', { name: 'Actions' });
  await board.getByRole('row', { name: /Acme Backup/ }).waitFor();
  assert.equal(await board.locator('tbody tr.row').count(), 1);
  assert.equal(await page.getByText('Service Redeploy').count(), 0);
  await shot(page, 'domain-user-actions');

  await page.getByRole('link', { name: 'Objects' }).click();
  const tree = page.getByRole('tree', { name: 'Objects' });
  await tree.getByRole('treeitem').first().waitFor();
  assert.deepEqual(await tree.getByRole('treeitem').evaluateAll((items) => items.map((i) => i.dataset.key)), ['node/acme-node']);
  assert.equal(await page.getByRole('link', { name: 'Admin' }).count(), 0, 'no administration for a user');
  // Another domain's record by its permalink is not found.
  await page.goto(`${BASE}/?record=${seed.defaultIds[0]}`);
  await page.getByRole('complementary', { name: 'Record' }).getByText('No such record').waitFor();
  noErrors(page, [/status of 404/]);
  await page.context().close();
});

test('an admin creates a token (shown once) and revokes it; users are added, demoted and disabled', async () => {
  const page = await newPage();
  await signIn(page, 'admin', ADMIN_PASSWORD, '/admin');
  const tokens = page.getByRole('region', { name: 'Tokens' });
  await tokens.getByLabel('Token name').fill('from-the-ui');
  await tokens.getByRole('button', { name: 'Create token' }).click();
  const secret = await page.getByLabel('Token secret').inputValue();
  assert.match(secret, /^lbk_/);
  const who = await api('GET', '/logbook/v1/whoami', undefined, secret);
  assert.equal(who.user, 'admin');
  await shot(page, 'admin-token');
  const listed = await api('GET', '/logbook/v1/tokens');
  const created = listed.tokens.find((t) => t.name === 'from-the-ui');
  assert.ok(created, JSON.stringify(listed));
  assert.equal(JSON.stringify(listed).includes(secret), false, 'never listed again');
  await page.getByRole('button', { name: `Revoke token ${created.id}` }).click();
  await page.locator(`tr[data-token="${created.id}"]`).getByText('revoked').waitFor();
  const refused = await fetch(`${BASE}/logbook/v1/whoami`, { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(refused.status, 401);

  const users = page.getByRole('region', { name: 'Users' });
  await users.getByLabel('New user name').fill('ui-made');
  await users.getByLabel('New user role').selectOption('writer');
  await users.getByLabel('New user domain').fill('acme');
  await users.getByLabel('New user password').fill('ui-made-password');
  await users.getByRole('button', { name: 'Add user' }).click();
  await page.getByLabel('Role of ui-made').waitFor();
  await page.getByLabel('Role of ui-made').selectOption('user');
  await page.waitForFunction(async () => {
    const answer = await (await fetch('/logbook/v1/users')).json();
    return answer.users.some((u) => u.name === 'ui-made' && u.role === 'user');
  });
  await page.getByRole('button', { name: 'Disable ui-made' }).click();
  await page.getByRole('button', { name: 'Enable ui-made' }).waitFor();
  const accounts = await api('GET', '/logbook/v1/users');
  const made = accounts.users.find((u) => u.name === 'ui-made');
  assert.deepEqual([made.role, made.domain, made.disabled], ['user', 'acme', true]);
  await shot(page, 'admin');
  noErrors(page);
  await page.context().close();
});

test('dark theme and phone width', async () => {
  for (const colorScheme of ['light', 'dark']) {
    const page = await newPage({ colorScheme });
    await signIn(page, 'admin', ADMIN_PASSWORD, '/?q=default-only&range=1h');
    await page.waitForFunction(() => document.body.dataset.searchState === 'done');
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(background === 'rgb(255, 255, 255)', colorScheme === 'light', background);
    await shot(page, `search-${colorScheme}`);
    await page.locator(`.results .row[data-id="${seed.defaultIds[20]}"]`).click();
    await page.locator('.context-list').waitFor();
    await shot(page, `record-panel-${colorScheme}`);
    await page.goto(`${BASE}/actions`);
    await page.getByRole('table', { name: 'Actions' }).locator('tbody tr.row').first().click();
    await page.getByRole('list', { name: 'Log' }).locator('li').first().waitFor();
    await shot(page, `actions-${colorScheme}`);
    noErrors(page);
    await page.context().close();
  }
  const phone = await newPage({ viewport: { width: 390, height: 844 } });
  await signIn(phone, 'admin', ADMIN_PASSWORD, '/?q=default-only');
  await phone.waitForFunction(() => document.body.dataset.searchState === 'done');
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  await shot(phone, 'phone-search');
  await phone.locator('.results .row').first().click();
  await phone.getByRole('complementary', { name: 'Record' }).locator('.context-list').waitFor();
  await shot(phone, 'phone-record');
  noErrors(phone);
  await phone.context().close();
});
