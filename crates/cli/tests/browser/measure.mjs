// Times searches in the UI against a running server, e.g. a large store:
//
//   node crates/cli/tests/browser/measure.mjs URL USER PASSWORD [SEARCH ...]
//
// with NODE_MODULES (playwright-core's folder; the browser test installs one under
// target/tmp/ui-node/node_modules) and optionally CHROMIUM and REPEAT (default 5).
// Each SEARCH is a page URL query (`since=...&until=...&level=ERROR`) opened first;
// then the time from pressing Enter in the search box to the first page and the
// histogram being rendered is measured REPEAT times (the page's own measurement,
// `data-search-ms`, taken at the next animation frame), and the time until the first
// page alone was rendered (`data-page-ms`). Prints one line per search: medians and
// worst, with the histogram's total and the server's time for each call.

import { createRequire } from 'node:module';
import path from 'node:path';

const [url, user, password, ...searches] = process.argv.slice(2);
if (!url || !user || !password) {
  console.error('usage: measure.mjs URL USER PASSWORD [SEARCH ...]');
  process.exit(2);
}
const { chromium } = createRequire(path.resolve(process.env.NODE_MODULES || 'node_modules', 'x.js'))('playwright-core');
const repeat = Number(process.env.REPEAT || 5);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
await page.goto(url);
await page.getByLabel('Username').fill(user);
await page.getByLabel('Password').fill(password);
await page.getByRole('button', { name: 'Sign in' }).click();
await page.waitForFunction(() => document.body.dataset.searchState === 'done', null, { timeout: 120000 });

for (const search of searches.length ? searches : ['']) {
  await page.goto(`${url}/?${search}`);
  await page.waitForFunction(() => document.body.dataset.searchState === 'done', null, { timeout: 120000 });
  const times = [];
  const pages = [];
  let total = null;
  let api = {};
  for (let i = 0; i < repeat; i++) {
    await page.evaluate(() => {
      document.body.dataset.searchState = 'stale';
      performance.clearResourceTimings();
    });
    await page.getByRole('searchbox', { name: 'Search' }).press('Enter');
    await page.waitForFunction(() => document.body.dataset.searchState === 'done', null, { timeout: 120000 });
    times.push(Number(await page.evaluate(() => document.body.dataset.searchMs)));
    pages.push(Number(await page.evaluate(() => document.body.dataset.pageMs)));
    total = await page.locator('.summary .total').getAttribute('data-total');
    api = await page.evaluate(() => Object.fromEntries(performance.getEntriesByType('resource')
      .filter((e) => e.name.includes('/logbook/v1/'))
      .map((e) => [new URL(e.name).pathname.replace('/logbook/v1/', ''), Math.round(e.responseEnd - e.requestStart)])));
  }
  const median = (values) => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)];
  console.log(`search ?${search}: page and histogram rendered: median ${median(times)} ms, worst ${Math.max(...times)} ms; first page alone: median ${median(pages)} ms; over ${repeat}; ${total} records; last run's calls (ms): ${JSON.stringify(api)}`);
}
await browser.close();
