/**
 * Headless Chromium locked down to loopback (as test/integration/browser/core.browser.test.ts):
 * the system's Chromium through playwright-core (nothing is downloaded), no proxy, every host name
 * unresolvable except the given loopback address, background traffic off, service workers blocked,
 * and any request to a host outside 127.0.0.0/8 aborted and recorded in `blocked`.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

export const CHROMIUM_CANDIDATES = [process.env.PEERLB_CHROMIUM, '/usr/bin/chromium', '/usr/lib/chromium/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'].filter(
  (p): p is string => Boolean(p),
);
export const CHROMIUM: string | undefined = CHROMIUM_CANDIDATES.find((p) => existsSync(p));

export interface LockedBrowser {
  browser: Browser;
  context: BrowserContext;
  /** Requests aborted because they left loopback. */
  blocked: string[];
}

/** Chromium's flags for a browser that may reach only `host` on loopback (and `extra` flags of a test's own). */
export function loopbackChromiumArgs(host: string, extra: string[] = []): string[] {
  return [
    '--no-sandbox', // the tests run as root
    '--no-proxy-server',
    ...extra,
    `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${host}`,
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-domain-reliability',
    '--disable-sync',
    '--disable-default-apps',
    '--no-first-run',
    '--no-default-browser-check',
    '--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication,CertificateTransparencyComponentUpdater',
  ];
}

export async function launchLoopbackChromium(host: string, extraArgs: string[] = []): Promise<LockedBrowser> {
  if (!CHROMIUM) throw new Error(`no Chromium found (looked at ${CHROMIUM_CANDIDATES.join(', ')})`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: loopbackChromiumArgs(host, extraArgs),
  });
  const blocked: string[] = [];
  const context = await browser.newContext({ serviceWorkers: 'block' });
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname.startsWith('127.')) return route.continue();
    blocked.push(url.href);
    return route.abort('blockedbyclient');
  });
  return { browser, context, blocked };
}
