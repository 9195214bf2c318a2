// Plays a live stream in tern's demo page (the Live section, mpegts.js
// served by tern) in Debian's headless chromium, for
// tests/tests/browser_demo.rs:
//
//   node live.mjs --url http://127.0.0.1:PORT/ --room live --stream cam \
//     --transport http|ws --screenshot out.png
//
// It lists the room's streams, starts the player, and waits until the video
// has decoded --frames frames (within --within ms) while its currentTime
// advances. Prints JSON lines: {"event":"streams","names":[…]}
// {"event":"first-frame","ms":…} {"event":"playing","frames":…,"currentTime":…,"delay":…,"ms":…}
// {"event":"screenshot","path":…}; {"event":"error",…} and exit 1 on failure.

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    room: { type: 'string', default: 'live' },
    stream: { type: 'string', default: 'cam' },
    transport: { type: 'string', default: 'http' },
    frames: { type: 'string', default: '100' },
    within: { type: 'string', default: '8000' },
    screenshot: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});
const emit = obj => process.stdout.write(JSON.stringify(obj) + '\n');
const userDataDir = mkdtempSync(join(tmpdir(), 'tern-chromium-'));
let context;
let status = 1;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: args.chromium,
    headless: true,
    viewport: { width: 1400, height: 700 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', e => emit({ event: 'pageerror', message: String(e) }));
  page.on('response', r => {
    if (r.status() >= 400) emit({ event: 'http-error', url: r.url(), status: r.status() });
  });
  await page.goto(args.url);
  await page.fill('#l-room', args.room);
  await page.selectOption('#l-transport', args.transport);
  const names = await page.evaluate(() => window.ternLive.listStreams());
  emit({ event: 'streams', names });
  if (!names.includes(args.stream)) throw new Error(`${args.stream} is not listed`);
  await page.click(`#live-streams button:has-text("${args.stream}")`);
  await page.waitForFunction(() => window.ternLive.state().frames > 0, null, { timeout: 5000 });
  const first = await page.evaluate(() => window.ternLive.state());
  emit({ event: 'first-frame', ms: first.firstFrameMs ?? first.sinceStartMs });
  const target = Number(args.frames);
  await page.waitForFunction(n => window.ternLive.state().frames >= n, target,
    { timeout: Number(args.within), polling: 100 });
  const a = await page.evaluate(() => window.ternLive.state());
  await page.waitForTimeout(1000);
  const b = await page.evaluate(() => window.ternLive.state());
  emit({ event: 'playing', frames: b.frames, currentTime: b.currentTime, advanced: b.currentTime - a.currentTime, delay: b.delay, ms: a.sinceStartMs, url: b.url });
  if (!(b.currentTime > a.currentTime)) throw new Error('currentTime does not advance');
  if (args.screenshot) {
    await page.screenshot({ path: args.screenshot, fullPage: true });
    emit({ event: 'screenshot', path: args.screenshot });
  }
  status = 0;
} catch (e) {
  emit({ event: 'error', message: String(e) });
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(status);
