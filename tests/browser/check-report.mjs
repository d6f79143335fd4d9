// Opens a memlens HTML report in Debian's Chromium (no network: every request other than the
// file itself is blocked and recorded), drives it like a user and prints what it saw as JSON.
// The assertions live in tests/test_report_html.py.
//
//   node check-report.mjs REPORT.html SEARCH_TERM
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const [file, searchTerm] = process.argv.slice(2);
if (!file) {
  console.error('usage: node check-report.mjs REPORT.html SEARCH_TERM');
  process.exit(2);
}
const url = pathToFileURL(file).href;
const profile = mkdtempSync(join(tmpdir(), 'memlens-chromium-'));
const out = { network: [], consoleErrors: [], pageErrors: [], dialogs: [] };

const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  offline: true,
  viewport: { width: 1280, height: 900 },
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
try {
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u === url) return route.continue();
    out.network.push(u);
    return route.abort();
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error') out.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => out.pageErrors.push(String(e)));
  page.on('dialog', (d) => { out.dialogs.push(d.message()); d.dismiss(); });
  page.on('request', (r) => { if (r.url() !== url && !out.network.includes(r.url())) out.network.push(r.url()); });

  const started = Date.now();
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => window.memlensReport !== undefined, null, { timeout: 30000 });
  out.loadMs = Date.now() - started;

  // What the flame graph shows now: its state, laid-out frames and painted pixels.
  const snap = () => page.evaluate(() => {
    const r = window.memlensReport;
    const c = document.getElementById('flame');
    const g = c.getContext('2d');
    let painted = 0, highlighted = 0;
    if (c.width > 0 && c.height > 0 && !document.getElementById('flame-box').hidden) {
      const px = g.getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < px.length; i += 4) {
        if (px[i + 3] > 0) painted++;
        if (px[i] === 224 && px[i + 1] === 51 && px[i + 2] === 138) highlighted++;
      }
    }
    return {
      view: r.state.view,
      moment: r.state.moment,
      thread: r.state.thread,
      total: r.stats.total,
      rects: r.stats.rects,
      labels: r.rects().map((x) => x.label),
      painted,
      highlighted,
      matchedBytes: r.stats.matchedBytes,
      share: r.stats.share,
      searchText: document.getElementById('search-result').textContent,
      caption: document.getElementById('flame-caption').textContent,
      lines: [...document.querySelectorAll('#lines tbody tr')].map((tr) => [...tr.cells].map((td) => td.textContent)),
    };
  });

  out.initial = await snap();
  // A top line's function, line by line: opened by a click, closed by another.
  const withSource = page.locator('#lines tbody tr.has-source').first();
  if (await withSource.count()) {
    await withSource.click();
    out.functionView = await page.evaluate(() => [...document.querySelectorAll('#lines tr.function-view tr')]
      .map((tr) => [...tr.cells].map((td) => td.textContent)));
    out.functionTitle = await page.evaluate(() => document.querySelector('#lines .function-title')?.textContent || '');
    await withSource.click();
    out.functionViewsAfterClose = await page.evaluate(() => document.querySelectorAll('#lines tr.function-view').length);
  }
  out.views = {};
  for (const name of ['peak', 'leaks', 'allocations', 'temporary']) {
    const tab = page.locator(`#views button[data-view="${name}"]`);
    if (await tab.isDisabled()) { out.views[name] = null; continue; }
    await tab.click();
    out.views[name] = await snap();
  }
  const peakTab = page.locator('#views button[data-view="peak"]');
  if (!(await peakTab.isDisabled())) await peakTab.click();

  // Search: type, wait for the debounce, read the highlight.
  await page.fill('#search', searchTerm || '');
  await page.waitForTimeout(400);
  out.search = await snap();
  await page.fill('#search', '');
  await page.waitForTimeout(400);

  // Zoom: click the widest frame of the second row.
  const rects = await page.evaluate(() => window.memlensReport.rects());
  const row1 = rects.filter((r) => r.depth === 1).sort((a, b) => b.w - a.w)[0];
  if (row1) {
    await page.locator('#flame').scrollIntoViewIfNeeded();
    const box = await page.locator('#flame').boundingBox();
    await page.mouse.click(box.x + row1.x + row1.w / 2, box.y + 18 * 1.5);
    out.zoom = await snap();
    await page.keyboard.press('Escape');
  }

  // Toggles.
  await page.uncheck('#hide-memlens');
  await page.uncheck('#hide-import');
  out.unhidden = await snap();
  await page.check('#hide-memlens');
  await page.check('#hide-import');
  await page.check('#inverted');
  out.inverted = await snap();
  await page.uncheck('#inverted');

  // Thread filter: each thread in turn.
  const threads = (await page.isDisabled('#thread'))
    ? []
    : await page.$$eval('#thread option', (os) => os.map((o) => ({ value: o.value, text: o.textContent })));
  out.threads = [];
  for (const t of threads) {
    await page.selectOption('#thread', t.value);
    out.threads.push({ name: t.text, ...(await snap()) });
  }
  if (threads.length) await page.selectOption('#thread', '-1');

  // Timeline: click each moment's tick.
  const moments = await page.evaluate(() => window.memlensReport.data.moments.length);
  out.moments = [];
  for (let i = 0; i < moments; i++) {
    await page.locator('#timeline').scrollIntoViewIfNeeded();
    const x = await page.evaluate((k) => window.memlensReport.momentX(k), i);
    const box = await page.locator('#timeline').boundingBox();
    await page.mouse.click(box.x + x, box.y + box.height / 2);
    out.moments.push({ ...(await snap()), info: await page.textContent('#moment-info') });
  }
  if (moments === 0 && (await page.isVisible('#timeline'))) {
    await page.locator('#timeline').scrollIntoViewIfNeeded();
    const box = await page.locator('#timeline').boundingBox();
    if (box) await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  }
  out.momentInfo = await page.textContent('#moment-info');

  // The heap panel: its empty note, totals, suspects and each table's cells, as shown.
  out.heap = await page.evaluate(() => {
    const panel = document.getElementById('heap-panel');
    const rows = (id) => [...panel.querySelectorAll('#' + id + ' tbody tr')].map((tr) => [...tr.cells].map((td) => td.textContent));
    return {
      emptyShown: !panel.querySelector('.empty').hidden,
      totals: [...panel.querySelectorAll('#heap-totals div')].map((d) => d.textContent),
      suspects: [...panel.querySelectorAll('#heap-suspects li')].map((li) => li.textContent),
      dominators: rows('heap-dominators'),
      types: rows('heap-types'),
      text: panel.innerText,
    };
  });

  out.text = await page.evaluate(() => document.body.innerText);
  out.injected = await page.evaluate(() => ({
    img: document.querySelectorAll('img').length,
    bold: document.querySelectorAll('main b, header b:not(.totals b)').length,
    scripts: document.querySelectorAll('script').length,
  }));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
