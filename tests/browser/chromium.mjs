// What the scripts in tests/browser share: Debian's headless Chromium with
// a throwaway profile, the page's errors reported as JSON lines on stdout,
// and the exit status (0 when every step worked, 1 after an
// {"event":"error",…} line if not).

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Prints one JSON line on stdout. */
export const emit = obj => process.stdout.write(JSON.stringify(obj) + '\n');

/**
 * Opens a page in a fresh headless Chromium (`executablePath`, `viewport`,
 * `args` added to the common flags, `timeout` for every wait), reports
 * {"event":"pageerror"} and {"event":"http-error"} (and, with
 * `consoleErrors`, {"event":"console"}) lines, runs `steps(page)`, closes
 * the browser, removes its profile and exits the process: 0 when `steps`
 * resolved, 1 after an {"event":"error"} line when anything threw.
 */
export async function withPage({ executablePath, viewport, args = [], timeout, consoleErrors = false }, steps) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'tern-chromium-'));
  let context;
  let status = 1;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      viewport,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        ...args,
      ],
    });
    const page = context.pages()[0] ?? await context.newPage();
    page.setDefaultTimeout(timeout);
    page.on('pageerror', e => emit({ event: 'pageerror', message: String(e) }));
    if (consoleErrors) {
      // Failed loads are reported with their URL by the response handler;
      // the console only repeats them without it.
      page.on('console', m => {
        if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
          emit({ event: 'console', text: m.text() });
        }
      });
    }
    page.on('response', r => {
      if (r.status() >= 400) emit({ event: 'http-error', url: r.url(), status: r.status() });
    });
    await steps(page);
    status = 0;
  } catch (e) {
    emit({ event: 'error', message: String(e && e.stack || e) });
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
  process.exit(status);
}
