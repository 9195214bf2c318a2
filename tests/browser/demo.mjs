// Drives Debian's headless chromium through tern's demo page (the chat room
// at `/`) with playwright-core, for tests/tests/e2e/browser_demo.rs:
//
//   node demo.mjs --url http://127.0.0.1:PORT/ --room chat/room1 \
//     --say "line from the page" --expect "line from RTMP" --screenshot out.png
//
// It joins the room, sends --say through the page's form, waits until the
// page's log shows --expect (set by an RTMP client), opens SO `chat` in the
// inspector, saves a screenshot, and prints one JSON line per step on stdout:
//   {"event":"joined","status":…} {"event":"sent"} {"event":"received"}
//   {"event":"log","lines":[{"text":…,"mine":…},…]}
//   {"event":"inspected","keys":[[key, json],…],"status":…} {"event":"screenshot","path":…}
// and {"event":"pageerror"|"console"|"http-error",…} for errors in the page.
// Exit status 0 when every step worked; 1 (with {"event":"error",…}) if not.

import { emit, withPage } from './chromium.mjs';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    room: { type: 'string', default: 'chat/room1' },
    say: { type: 'string' },
    expect: { type: 'string' },
    screenshot: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    timeout: { type: 'string', default: '20000' },
  },
});
await withPage({
  executablePath: args.chromium,
  viewport: { width: 1100, height: 560 },
  // The TLS test serves the page and wss:// with a certificate it made.
  args: ['--ignore-certificate-errors'],
  timeout: Number(args.timeout),
  consoleErrors: true,
}, async page => {
  await page.goto(args.url);
  await page.fill('#room', args.room);
  await page.click('#join');
  // The page shows `v<version> <op>` of the last message: `sync` once the
  // use of SO "chat" is answered.
  await page.waitForFunction(() => /\bsync$/.test(document.getElementById('chat-status').textContent));
  emit({ event: 'joined', status: await page.textContent('#chat-status') });

  await page.fill('#line', args.say);
  await page.click('#say button');
  emit({ event: 'sent' });

  await page.waitForFunction(
    expected => [...document.querySelectorAll('#log div')].some(d => d.textContent === expected),
    args.expect,
  );
  emit({ event: 'received' });

  const lines = await page.$$eval('#log div', divs =>
    divs.map(d => ({ text: d.textContent, mine: d.classList.contains('me') })));
  emit({ event: 'log', lines });
  // The inspector opens the same SO and lists its keys.
  await page.click('#inspect');
  await page.waitForFunction(() => document.querySelectorAll('#i-keys tr').length > 0);
  const keys = await page.$$eval('#i-keys tr', rows =>
    rows.map(r => [...r.querySelectorAll('td')].map(td => td.textContent)));
  emit({ event: 'inspected', keys, status: await page.textContent('#i-status') });

  await page.screenshot({ path: args.screenshot });
  emit({ event: 'screenshot', path: args.screenshot });
});
