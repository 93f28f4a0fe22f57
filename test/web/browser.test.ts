// The run report and the lab page in headless Chromium. The report is served
// under the daemon's own Content-Security-Policy; the lab page by a real
// daemon listening on 127.0.0.1 over a host twin, with a training job whose
// SSE stream draws the loss curve. Both must load without a console error.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Page } from 'playwright-core';
import { renderReport } from '../../server/src/regression/report.js';
import { FIGURES } from '../../server/src/regression/types.js';
import { OPERATOR_TOKEN, VIEWER_TOKEN, apiClient, buildApp, tempDir, until } from '../server/helpers.js';
import { startTwins, stopTwins, twinBuilt, type TwinProcess } from '../../tools/proc/twin.js';
import { ARTIFACTS, chromiumMissing, launchChromium, openPage, screenshot, type Browser, type Problem } from './browser.js';
import { EVIL_ID, baselineRun, failedBoardRun, regressedHistory, runView } from './fixtures.js';

const TRAIN_STEPS = 384;

let browser: Browser | undefined;

beforeAll(async () => {
  // without Chromium every browser test fails, saying so, rather than being skipped
  if (!chromiumMissing()) browser = await launchChromium();
});

it('has Chromium to test with', () => {
  expect(chromiumMissing()).toBeNull();
});

afterAll(async () => {
  await browser?.close();
});

const expectNoProblems = (problems: Problem[]): void => {
  expect(problems, problems.map((p) => `${p.kind}: ${p.text} (${p.url})`).join('\n')).toEqual([]);
};

describe('run report in headless Chromium', () => {
  let server: http.Server;
  let base: string;
  const pages = new Map<string, string>();

  beforeAll(async () => {
    // the daemon's own CSP, read from a daemon, so the report is checked under what it will be served with
    const app = await buildApp();
    const csp = (await app.inject({ method: 'GET', url: '/v1/health' })).headers['content-security-policy'] as string;
    await app.close();
    expect(csp).toContain("script-src 'self'");

    const { run, history, baseline } = regressedHistory();
    pages.set('/regressed.html', renderReport(run, history, baseline));
    const failed = failedBoardRun();
    const earlier = runView('run_prev', new Date(Date.UTC(2025, 0, 30)), failed.boards);
    pages.set('/failed.html', renderReport(failed, [baselineRun(), earlier, failed], baselineRun()));
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    for (const [name, html] of pages) fs.writeFileSync(path.join(ARTIFACTS, `report-${name.slice(1)}`), html);

    server = http.createServer((req, res) => {
      const html = pages.get(req.url ?? '');
      if (!html) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': csp }).end(html);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    // the browser keeps its connections alive
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('draws every figure of every board over 30 runs, regressed points marked, and logs no error', async () => {
    const { page, problems } = await openPage(browser);
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`${base}/regressed.html`);
    const plots = page.locator('svg.plot[data-figure][data-device]');
    expect(await plots.count()).toBe(2 * FIGURES.length);
    for (const device of ['qemu-m4-0', 'twin-0']) {
      for (const f of FIGURES) {
        const plot = page.locator(`svg.plot[data-figure="${f.name}"][data-device="${device}"]`);
        expect(await plot.locator('circle').count(), `${device} ${f.name}`).toBe(30);
        expect(await plot.locator('line.baseline').count()).toBe(1);
        const box = await plot.boundingBox();
        expect(box!.width).toBeGreaterThan(100);
        expect(box!.height).toBeGreaterThan(50);
      }
    }
    // the two regressions of qemu-m4-0, each on this run's point, drawn in red
    const regressed = page.locator('svg.plot[data-device="qemu-m4-0"] circle.regressed');
    expect(await regressed.count()).toBe(2);
    expect(await regressed.first().evaluate((c) => getComputedStyle(c).fill)).toBe('rgb(207, 34, 46)');
    expect(await page.locator('td.figure.regressed').count()).toBe(2);
    // self-contained: the page itself is the only request
    expect(requests).toEqual([`${base}/regressed.html`]);
    await screenshot(page, 'report-regressed');
    expectNoProblems(problems);
    await page.close();
  });

  it('shows a device id carrying markup as text: no element or script from it', async () => {
    const { page, problems } = await openPage(browser);
    let dialogs = 0;
    page.on('dialog', (d) => {
      dialogs++;
      void d.dismiss();
    });
    await page.goto(`${base}/failed.html`);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(0);
    const row = page.locator('table.summary tbody tr').first();
    expect(await row.getAttribute('data-device')).toBe(EVIL_ID);
    expect(await row.locator('th.device').innerText()).toContain(EVIL_ID);
    expect(await row.locator('td.failure').innerText()).toContain('link-lost in train');
    expect(await page.locator(`svg.plot[data-device="${EVIL_ID}"]`).count()).toBe(FIGURES.length);
    expect(dialogs).toBe(0);
    await screenshot(page, 'report-failed-board');
    expectNoProblems(problems);
    await page.close();
  });
});

describe.runIf(twinBuilt())('lab page served by the daemon', () => {
  let app: FastifyInstance;
  let twins: TwinProcess[] = [];
  let base: string;
  let jobId: string;
  const { post, get } = apiClient(() => app, OPERATOR_TOKEN);

  beforeAll(async () => {
    const dir = tempDir('tinyrig-web-');
    twins = await startTwins(dir, 1);
    app = await buildApp({
      goodAccuracy: 0.05, // a snapshot after a few hundred steps counts as good, so last-good exists
      devices: [{ id: 'twin-0', path: twins[0]!.path, board: 'host-twin', emulated: true, tags: ['emulated', 'lab'], powerBoard: 'nrf52840dk/nrf52840' }],
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    await until(() => app.devices.list().every((b) => b.status === 'online'), 15_000, 'twin online');
    const deployed = await post('/v1/devices/twin-0/model', { model: 'cnn', seed: 1 });
    expect(deployed.status, JSON.stringify(deployed.body)).toBe(200);
    const started = await post('/v1/devices/twin-0/train', { dataset: 'fashion-mnist', split: 'train', offset: 0, count: TRAIN_STEPS });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    jobId = started.body.jobId;
  });

  afterAll(async () => {
    await app?.close();
    await stopTwins(twins);
  });

  /** Mutating buttons a user could press right now. */
  const pressable = (page: Page) => page.locator('button.mutating:visible:enabled');

  async function useToken(page: Page, token: string, role: string): Promise<void> {
    await page.fill('#token', token);
    await page.click('#token-form button[type=submit]');
    await page.locator('#role', { hasText: role }).waitFor();
  }

  it('shows the board and draws the loss curve of a training job from its SSE stream; without a token nothing can be changed', async () => {
    const { page, problems } = await openPage(browser);
    await page.goto(`${base}/`);
    const board = page.locator('#boards tr[data-device="twin-0"]');
    await board.waitFor();
    await board.locator('.state.online').waitFor();
    await board.locator('td', { hasText: 'cnn' }).first().waitFor();

    await page.locator(`#jobs tr[data-job="${jobId}"] button.follow`).click();
    const curve = page.locator('#loss-curve');
    await page.waitForFunction((n) => document.querySelector('#loss-curve')?.getAttribute('data-steps') === String(n), TRAIN_STEPS, { timeout: 60_000 });
    await page.locator('#curve-stats', { hasText: 'succeeded' }).waitFor();
    const stepPath = curve.locator('path.step-loss');
    expect(Number(await stepPath.getAttribute('data-points'))).toBe(TRAIN_STEPS);
    expect((await stepPath.getAttribute('d'))!.length).toBeGreaterThan(TRAIN_STEPS * 8);
    const meanPath = curve.locator('path.mean-loss');
    expect(Number(await meanPath.getAttribute('data-points'))).toBeGreaterThan(1);
    expect(Number(await curve.getAttribute('data-loss-events'))).toBeGreaterThan(1);
    const box = await stepPath.boundingBox();
    expect(box!.width).toBeGreaterThan(300); // drawn across the plot, not a dot

    // the job's row and the board's figures follow the job
    await page.locator(`#jobs tr[data-job="${jobId}"] .state.succeeded`).waitFor();
    expect(await page.locator(`#jobs tr[data-job="${jobId}"] progress`).getAttribute('value')).toBe(String(TRAIN_STEPS));
    await board.locator('td.figures', { hasText: 'arena peak' }).waitFor();

    expect(await page.locator('#role').innerText()).toBe('read-only');
    expect(await page.locator('#readonly-note').isVisible()).toBe(true);
    expect(await pressable(page).count()).toBe(0);
    await screenshot(page, 'lab-visitor-loss-curve');
    expectNoProblems(problems);
    await page.close();
  });

  it('a viewer token still offers no mutating button', async () => {
    const { page, problems } = await openPage(browser);
    await page.goto(`${base}/`);
    await page.locator('#boards tr[data-device="twin-0"]').waitFor();
    await useToken(page, VIEWER_TOKEN, 'viewer');
    await page.locator('#snapshots tbody tr').first().waitFor();
    expect(await page.locator('button.mutating').count()).toBeGreaterThan(0);
    expect(await pressable(page).count()).toBe(0);
    expect(await page.evaluate(() => sessionStorage.getItem('tinyrig.token'))).toBe(VIEWER_TOKEN);
    expectNoProblems(problems);
    await page.close();
  });

  it('an operator token enables reserve, roll back and start run; a reservation shows its holder; a 403 is shown to the user', async () => {
    await until(async () => (await get(`/v1/jobs/${jobId}`)).state === 'succeeded', 60_000, 'training done');
    const snap = await post('/v1/devices/twin-0/snapshots', { tags: ['web'], evaluate: { dataset: 'fashion-mnist', split: 'test', offset: 0, count: 100 } });
    expect(snap.status, JSON.stringify(snap.body)).toBe(201);
    expect(snap.body.good).toBe(true);
    const { page, problems } = await openPage(browser);
    page.on('dialog', (d) => void d.accept());
    await page.goto(`${base}/`);
    const board = page.locator('#boards tr[data-device="twin-0"]');
    await board.waitFor();
    expect(await pressable(page).count()).toBe(0);
    await useToken(page, OPERATOR_TOKEN, 'operator');
    await board.locator('button.mutating:visible:enabled', { hasText: 'Roll back to last-good' }).waitFor();
    expect(await board.locator('button.mutating:visible:enabled', { hasText: 'Reserve' }).count()).toBe(1);
    expect(await page.locator('#run-start:visible:enabled').count()).toBe(1);
    expect(await page.locator('#readonly-note').isVisible()).toBe(false);

    // reserve the board: the lease column names the holder and the reason
    await page.fill('#lease-reason', 'scope probe on <SWD>');
    await board.locator('button.mutating', { hasText: 'Reserve' }).click();
    await board.locator('td.lease', { hasText: 'test-operator' }).waitFor();
    expect(await board.locator('td.lease').innerText()).toContain('scope probe on <SWD>');
    expect((await get('/v1/leases')).leases).toMatchObject([{ deviceIds: ['twin-0'], holder: 'test-operator' }]);
    await screenshot(page, 'lab-operator-reserved');
    await board.locator('button.mutating', { hasText: 'Release' }).click();
    await board.locator('button.mutating', { hasText: 'Reserve' }).waitFor();
    expect((await get('/v1/leases')).leases).toEqual([]);

    // roll back to last-good from the board's row, and from the snapshot's own row
    await page.locator(`#snapshots tr[data-snapshot="${snap.body.id}"]`).waitFor();
    await board.locator('button.mutating', { hasText: 'Roll back to last-good' }).click();
    await page.locator('#message.ok', { hasText: `twin-0 rolled back to ${snap.body.id}` }).waitFor();
    expect(await page.locator('#message').innerText()).toContain('verified true');
    await page.locator(`#jobs td`, { hasText: 'rollback' }).first().waitFor();
    expectNoProblems(problems);

    // the token loses its role behind the page's back: the daemon's 403 is shown and the buttons go away
    await page.evaluate((t) => sessionStorage.setItem('tinyrig.token', t), VIEWER_TOKEN);
    await board.locator('button.mutating', { hasText: 'Roll back to last-good' }).click();
    await page.locator('#message', { hasText: '403 TR_FORBIDDEN' }).waitFor();
    await page.locator('#role', { hasText: 'viewer' }).waitFor();
    expect(await pressable(page).count()).toBe(0);
    // the only error the browser logged is that refused request
    expect(problems.map((p) => [p.text, p.url])).toEqual([
      ['Failed to load resource: the server responded with a status of 403 (Forbidden)', `${base}/v1/devices/twin-0/rollback`],
    ]);
    await page.close();
  });

  it('an unknown token: the 401 is shown and the page stays read-only', async () => {
    const { page, problems } = await openPage(browser);
    await page.goto(`${base}/`);
    await page.locator('#boards tr[data-device="twin-0"]').waitFor();
    await page.fill('#token', 'not-a-token-of-this-daemon');
    await page.click('#token-form button[type=submit]');
    await page.locator('#message', { hasText: '401 TR_UNAUTHORIZED' }).waitFor();
    expect(await page.locator('#role').innerText()).toBe('read-only');
    expect(await pressable(page).count()).toBe(0);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.every((p) => p.text.includes('status of 401'))).toBe(true);
    await page.close();
  });

  it('lists regression runs with links to their report and JUnit file', async () => {
    const { page, problems } = await openPage(browser);
    const { run } = regressedHistory();
    const failed = { ...failedBoardRun(), suite: EVIL_ID };
    // the runs the daemon would answer, so the table's content is known
    await page.route(/\/v1\/runs\?/, (route) => route.fulfill({ contentType: 'application/json', body: JSON.stringify({ runs: [failed, run] }) }));
    await page.goto(`${base}/`);
    const row = page.locator('#runs tr[data-run="run_29"]');
    await row.waitFor();
    expect(await row.locator('.state.regressed').count()).toBe(1);
    expect(await row.innerText()).toContain('1 passed, 1 regressed, 0 failed of 2');
    expect(await row.locator('a.report').getAttribute('href')).toBe('/v1/runs/run_29/report.html');
    expect(await row.locator('a', { hasText: 'JUnit' }).getAttribute('href')).toBe('/v1/runs/run_29/junit.xml');
    const evil = page.locator('#runs tr[data-run="run_fail"]');
    expect(await evil.locator('td').nth(1).innerText()).toBe(EVIL_ID);
    expect(await page.locator('#runs img').count()).toBe(0);
    await screenshot(page, 'lab-runs');
    expectNoProblems(problems);
    await page.close();
  });
});
