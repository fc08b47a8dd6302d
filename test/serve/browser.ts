/**
 * Debian's Chromium, headless, driven by playwright-core, as the serve tests and `bench:serve`
 * use it: a fresh profile, the page's console errors and uncaught exceptions collected, and
 * (with `origin`) every request that does not go to the server recorded and refused.
 */
import { type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export interface OpenBrowser {
  context: BrowserContext;
  page: Page;
  /** console errors and uncaught exceptions of the page */
  errors: string[];
  /** requests refused for not going to `origin` */
  outside: string[];
}

export async function openBrowser(profile: string, o: { viewport: { width: number; height: number }; origin?: string }): Promise<OpenBrowser> {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: o.viewport,
  });
  const errors: string[] = [];
  const outside: string[] = [];
  try {
    if (o.origin !== undefined) {
      const origin = o.origin.replace(/\/$/, '');
      await context.route('**/*', (route) => {
        const u = route.request().url();
        if (u === origin || u.startsWith(`${origin}/`) || u.startsWith('data:')) return route.continue();
        outside.push(u);
        return route.abort();
      });
    }
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    return { context, page, errors, outside };
  } catch (e) {
    await context.close();
    throw e;
  }
}
