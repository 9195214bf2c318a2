// Plays a live stream in tern's demo page (the Live section, mpegts.js
// served by tern) in Debian's headless chromium, for
// tests/tests/e2e/browser_demo.rs:
//
//   node live.mjs --url http://127.0.0.1:PORT/ --room live --stream cam \
//     --transport http|ws --screenshot out.png
//
// It lists the room's streams, starts the player, and waits until the video
// has decoded --frames frames (within --within ms) while its currentTime
// advances. Prints JSON lines: {"event":"streams","names":[…]}
// {"event":"first-frame","ms":…} {"event":"playing","frames":…,"currentTime":…,"delay":…,"ms":…}
// {"event":"screenshot","path":…}; {"event":"error",…} and exit 1 on failure.

import { emit, withPage } from './chromium.mjs';
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
await withPage({
  executablePath: args.chromium,
  viewport: { width: 1400, height: 700 },
  args: ['--autoplay-policy=no-user-gesture-required'],
  timeout: 15000,
}, async page => {
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
});
