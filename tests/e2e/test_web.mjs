// The web chat page in headless Chromium (playwright-core driving /usr/bin/chromium): load it,
// send a message and see a streamed answer, reload and find the conversation in the list,
// IME composition Enter and Shift+Enter do not send, the Markdown renderer escapes HTML, the
// language toggle, and a screenshot in $BAIMO_TMP.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, deadline, TMP } from './server.mjs';

deadline(180e3);
let pw;
try {
  pw = await import('playwright-core');
} catch (e) {
  if (!process.env.BAIMO_PLAYWRIGHT) throw e;
  pw = await import(process.env.BAIMO_PLAYWRIGHT);
}
const chromium = pw.chromium || pw.default.chromium;

const srv = await startServer();
const ctx = await chromium.launchPersistentContext(mkdtempSync(join(TMP, 'chromium-')), {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, locale: 'en-US',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1100, height: 700 },
});
let failures = 0;
async function check(name, fn) {
  try { await fn(); console.log('ok   ' + name); } catch (e) {
    failures++;
    console.log('FAIL ' + name + ': ' + (e.stack || e));
  }
}

try {
  const page = ctx.pages()[0] || await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(srv.url + '/', { timeout: 30e3 });

  await check('page loads with the model list', async () => {
    await page.waitForFunction(() => document.querySelector('#model option'), null,
      { timeout: 10e3 });
    assert.equal(await page.$eval('#model', (s) => s.value), 'e2e-tiny');
    assert.equal(await page.title(), 'baimo');
  });

  await check('send a message, see a streamed answer', async () => {
    await page.$eval('#max_tokens', (e) => { e.value = '24'; });
    await page.fill('#input', 'Hello 你好');
    // The tiny model can finish in milliseconds, before a poll for '.streaming' would run, so
    // a MutationObserver installed before sending keeps every record: one childList record per
    // rendered delta of the answer, and the attribute record of its 'streaming' class removed.
    await page.evaluate(() => {
      window.__seen = { deltas: 0, streamed: false };
      new MutationObserver((recs) => {
        for (const r of recs) {
          const t = r.target;
          if (!(t instanceof Element) || !t.matches('.msg.assistant')) continue;
          if (r.type === 'childList' && r.addedNodes.length) window.__seen.deltas++;
          if (r.type === 'attributes' && /streaming/.test(r.oldValue || '')) {
            window.__seen.streamed = true;
          }
        }
      }).observe(document.getElementById('messages'), { subtree: true, childList: true,
        attributes: true, attributeFilter: ['class'], attributeOldValue: true });
    });
    await page.press('#input', 'Enter');
    await page.waitForSelector('.msg.assistant:not(.streaming)', { timeout: 60e3 });
    const seen = await page.evaluate(() => window.__seen);
    assert.ok(seen.streamed, 'the answer was never marked as streaming');
    assert.ok(seen.deltas >= 2, 'the answer was rendered ' + seen.deltas + ' time(s), not streamed');
    const texts = await page.$$eval('.msg', (els) => els.map((e) => [e.className, e.textContent]));
    assert.equal(texts.length, 2);
    assert.equal(texts[0][1], 'Hello 你好');
    assert.ok(texts[1][1].trim().length > 0, 'empty answer');
    assert.equal(await page.$eval('#input', (e) => e.value), '');
  });

  await check('reload: the conversation is in the list and opens', async () => {
    await page.waitForFunction(() => document.querySelectorAll('#conv-list li').length === 1,
      null, { timeout: 10e3 });
    await page.reload();
    await page.waitForFunction(() => document.querySelectorAll('#conv-list li').length === 1,
      null, { timeout: 10e3 });
    assert.equal(await page.$eval('#conv-list li span', (e) => e.textContent), 'Hello 你好');
    await page.click('#conv-list li span');
    await page.waitForFunction(() => document.querySelectorAll('.msg').length === 2, null,
      { timeout: 10e3 });
  });

  await check('IME composition Enter and Shift+Enter do not send', async () => {
    const before = await page.$$eval('.msg', (e) => e.length);
    await page.fill('#input', 'nihao');
    await page.evaluate(() => {
      const el = document.getElementById('input');
      el.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', isComposing: true,
        bubbles: true, cancelable: true }));
      const ev = new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true });
      Object.defineProperty(ev, 'keyCode', { get: () => 229 });
      el.dispatchEvent(ev);
    });
    await page.press('#input', 'Shift+Enter');
    await page.waitForTimeout(500);
    assert.equal(await page.$$eval('.msg', (e) => e.length), before);
    assert.match(await page.$eval('#input', (e) => e.value), /^nihao/);
    await page.fill('#input', '');
  });

  await check('Markdown renderer escapes HTML and formats', async () => {
    const html = await page.evaluate(() => renderMarkdown(
      '<img src=x onerror=alert(1)> **bold** *it* `x<y`\n\n- a\n- b\n\n```js\nconst s = "<b>";\n```\n[l](javascript:alert(1)) [ok](https://example.com)'));
    assert.ok(!html.includes('<img'), html);
    assert.ok(html.includes('&lt;img'));
    assert.ok(html.includes('<strong>bold</strong>') && html.includes('<em>it</em>'));
    assert.ok(html.includes('<code>x&lt;y</code>'));
    assert.ok(html.includes('<ul><li>a</li><li>b</li></ul>'));
    assert.ok(html.includes('<span class="tok-kw">const</span>'));
    assert.ok(html.includes('&quot;&lt;b&gt;&quot;'));
    assert.ok(!html.includes('href="javascript'));
    assert.ok(html.includes('href="https://example.com"'));
  });

  await check('language toggle switches the UI text', async () => {
    await page.click('#lang');
    assert.equal(await page.$eval('#send', (e) => e.textContent), '发送');
    await page.click('#lang');
    assert.equal(await page.$eval('#send', (e) => e.textContent), 'Send');
  });

  await page.screenshot({ path: join(TMP, 'web.png') });
  if (process.env.BAIMO_SCREENSHOT) await page.screenshot({ path: process.env.BAIMO_SCREENSHOT });
  assert.deepEqual(errors, []);
} finally {
  await ctx.close();
  await srv.stop();
}
console.log(failures ? failures + ' check(s) failed' : 'all checks passed');
process.exit(failures ? 1 : 0);
