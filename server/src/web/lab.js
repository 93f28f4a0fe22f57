// The lab page: boards, jobs with a live loss curve, snapshots and regression
// runs, read from the daemon's /v1 API. Plain DOM (every value set as text, so
// nothing a board or a user named can become markup); the token lives in
// sessionStorage and goes as a Bearer header on every fetch, the SSE stream
// included (read with fetch, since EventSource cannot send headers).

const TOKEN_KEY = 'tinyrig.token';
const REFRESH_MS = 2500;
const MAX_CURVE_POINTS = 800;

const $ = (sel) => document.querySelector(sel);

/** An element with attributes and children (strings become text nodes). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'onclick') el.addEventListener('click', v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

const state = {
  role: null,
  name: null,
  devices: [],
  leases: [],
  /** null: not asked yet; false: this daemon has no such route */
  leasesAvailable: null,
  runsAvailable: null,
  suitesAvailable: null,
  suites: [],
  jobs: [],
  runs: [],
  snapshotDevice: null,
  readsNeedToken: false,
  refreshing: false,
};

const token = () => sessionStorage.getItem(TOKEN_KEY) || '';
const canOperate = () => state.role === 'operator' || state.role === 'admin';

class ApiError extends Error {
  constructor(status, body, method, path) {
    const code = body && body.code ? body.code : `HTTP ${status}`;
    super(`${method} ${path}: ${status} ${code}: ${(body && body.message) || 'request failed'}`);
    this.status = status;
    this.code = code;
  }
}

/** A JSON request to the daemon with the tab's token; throws ApiError on a non-2xx answer. */
async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  const t = token();
  if (t) headers.authorization = `Bearer ${t}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) throw new ApiError(res.status, json, method, path);
  return json;
}

let messageTimer = 0;
function showMessage(text, ok = false) {
  const el = $('#message');
  el.textContent = text;
  el.className = ok ? 'ok' : '';
  el.hidden = false;
  clearTimeout(messageTimer);
  if (ok) messageTimer = setTimeout(() => (el.hidden = true), 6000);
}

function showError(err) {
  let text = err instanceof Error ? err.message : String(err);
  if (err instanceof ApiError && err.status === 401) text += ' — enter a valid token above';
  if (err instanceof ApiError && err.status === 403) text += ' — this token may not do that';
  showMessage(text);
}

// ---- formatting ----

const pct = (v) => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(1)} %`);
const bytes = (v) => (v === null || v === undefined ? '–' : v >= 10240 ? `${(v / 1024).toFixed(1)} KiB` : `${v} B`);
const short = (sha) => (sha ? sha.slice(0, 12) : '–');
function ago(iso) {
  if (!iso) return '–';
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (!Number.isFinite(s)) return iso;
  if (s < 90) return `${Math.max(0, Math.round(s))} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return iso.slice(0, 10);
}
function until(iso) {
  const s = (Date.parse(iso) - Date.now()) / 1000;
  if (!Number.isFinite(s)) return iso;
  return s <= 0 ? 'expired' : s < 5400 ? `${Math.ceil(s / 60)} min left` : `${Math.round(s / 3600)} h left`;
}
const sliceName = (sl) => (typeof sl === 'object' ? [sl.dataset, sl.split, sl.offset, sl.count].join('/') : String(sl));
const stateBadge = (st) => h('span', { class: `state ${st}` }, st);

// ---- token and role ----

async function loadSession() {
  try {
    const who = await api('GET', '/ui/session');
    state.role = who.role;
    state.name = who.name;
  } catch (err) {
    state.role = null;
    state.name = null;
    showError(err);
  }
  renderRole();
}

function renderRole() {
  const role = $('#role');
  role.textContent = state.role ? `${state.role}${state.name ? ` (${state.name})` : ''}` : 'read-only';
  role.className = `role ${state.role ?? ''}`;
  const operate = canOperate();
  $('#readonly-note').hidden = operate;
  for (const el of document.querySelectorAll('.mutating-bar')) el.hidden = !operate;
  for (const el of document.querySelectorAll('.mutating')) {
    el.hidden = !operate;
    el.disabled = !operate || el.dataset.pending === '1';
  }
}

/** A button that changes the rig: shown and enabled only for an operator token, busy while its request runs. */
function actionButton(label, title, run) {
  const b = h('button', { type: 'button', class: 'mutating', title }, label);
  b.hidden = !canOperate();
  b.disabled = !canOperate();
  b.addEventListener('click', async () => {
    b.dataset.pending = '1';
    b.disabled = true;
    try {
      const done = await run();
      if (done) showMessage(done, true);
    } catch (err) {
      showError(err);
      // a token that lost its role is found out here: offer only what it may do
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) await loadSession();
    } finally {
      b.dataset.pending = '';
      b.disabled = !canOperate();
      void refresh();
    }
  });
  return b;
}

// ---- data ----

async function optional(path, key, flag) {
  if (state[flag] === false) return state[key];
  try {
    const body = await api('GET', path);
    state[flag] = true;
    return body[key];
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      state[flag] = false; // an older daemon: stop asking
      return [];
    }
    throw err;
  }
}

async function refresh() {
  if (state.refreshing) return;
  state.refreshing = true;
  try {
    const [health, devices, jobs, leases, runs] = await Promise.all([
      api('GET', '/v1/health'),
      api('GET', '/v1/devices'),
      api('GET', '/v1/jobs?limit=15'),
      optional('/v1/leases', 'leases', 'leasesAvailable'),
      optional('/v1/runs?limit=20', 'runs', 'runsAvailable'),
    ]);
    state.readsNeedToken = false;
    state.devices = devices.devices;
    state.jobs = jobs.jobs;
    state.leases = leases;
    state.runs = runs;
    renderHealth(health);
    renderBoards();
    renderJobs();
    renderRuns();
    renderSnapshotDevices();
    autoFollow();
    void loadSnapshots();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && !token()) {
      state.readsNeedToken = true;
      $('#health').textContent = 'this daemon needs a token for reads: enter one above';
    } else {
      $('#health').textContent = `cannot read the rig: ${err.message}`;
    }
  } finally {
    state.refreshing = false;
  }
}

function renderHealth(hl) {
  const up = hl.uptimeS < 3600 ? `${Math.round(hl.uptimeS / 60)} min` : `${(hl.uptimeS / 3600).toFixed(1)} h`;
  $('#health').textContent = `${hl.devices.online} of ${hl.devices.total} boards online, ${hl.devices.busy} busy · ${hl.jobs.running} jobs running · up ${up}`;
}

function leaseOf(deviceId) {
  const lease = state.leases.find((l) => Array.isArray(l.deviceIds) && l.deviceIds.includes(deviceId));
  if (lease) return lease;
  const d = state.devices.find((x) => x.id === deviceId);
  const r = d && d.reservation;
  return r ? { id: r.leaseId, holder: r.holder, reason: r.reason, expiresAt: r.expiresAt } : null;
}

function renderBoards() {
  const body = $('#boards tbody');
  const rows = state.devices.map((d) => {
    const lease = leaseOf(d.id);
    const m = d.model;
    const figures = [];
    if (d.lastEval) figures.push(`accuracy ${pct(d.lastEval.accuracy)} on ${d.lastEval.count}`);
    if (d.ram && d.ram.arenaPeak !== null) figures.push(`arena peak ${bytes(d.ram.arenaPeak)}`);
    if (d.ram && d.ram.stackPeak !== null) figures.push(`stack peak ${bytes(d.ram.stackPeak)}`);
    if (d.ram && d.ram.peak !== null) figures.push(`RAM peak ${bytes(d.ram.peak)} of ${bytes(d.ram.total)}`);
    const actions = [
      lease
        ? actionButton('Release', `release lease ${lease.id}`, async () => {
            await api('DELETE', `/v1/leases/${encodeURIComponent(lease.id)}`);
            return `released ${d.id}`;
          })
        : actionButton('Reserve', `reserve ${d.id} (POST /v1/leases)`, async () => {
            const reason = $('#lease-reason').value.trim() || 'manual';
            const minutes = Math.max(1, Number($('#lease-minutes').value) || 30);
            const l = await api('POST', '/v1/leases', { devices: [d.id], reason, ttlMs: minutes * 60_000 });
            return `reserved ${d.id}${l && l.expiresAt ? ` until ${l.expiresAt}` : ''}`;
          }),
      actionButton('Roll back to last-good', `write ${d.id}'s last good snapshot back and verify its hash`, async () => {
        if (!window.confirm(`Roll ${d.id} back to its last good snapshot? Its current weights are replaced.`)) return null;
        const r = await api('POST', `/v1/devices/${encodeURIComponent(d.id)}/rollback`, { snapshotId: 'last-good' });
        return `${d.id} rolled back to ${r.snapshotId} (${short(r.sha256)}, verified ${r.verified})`;
      }),
      h('button', { type: 'button', onclick: () => selectSnapshots(d.id) }, 'Snapshots'),
    ];
    return h(
      'tr',
      { 'data-device': d.id },
      h('td', {}, h('strong', {}, d.id), h('div', { class: 'sub' }, [d.board, d.class, ...(d.tags || [])].filter(Boolean).join(' · '))),
      h('td', {}, stateBadge(d.state), d.busy ? h('div', { class: 'sub' }, `busy: ${d.busy}`) : null, d.lastError && d.state !== 'online' ? h('div', { class: 'sub' }, d.lastError) : null),
      h('td', {}, m ? [h('div', {}, m.name || short(m.sha256)), h('div', { class: 'sub' }, `${d.steps} steps · weights ${short(m.weightsSha256)}`)] : '–'),
      h('td', { class: 'lease' }, lease ? [h('div', {}, lease.holder || '–'), h('div', { class: 'sub' }, [lease.reason, lease.expiresAt ? until(lease.expiresAt) : null].filter(Boolean).join(' · '))] : '–'),
      h('td', { class: 'figures' }, figures.length ? figures.map((f) => h('div', {}, f)) : '–'),
      h('td', { class: 'actions' }, actions),
    );
  });
  body.replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'no boards configured'))]));
  const note = $('#leases-note');
  note.hidden = state.leasesAvailable !== false;
  note.textContent = 'This daemon has no /v1/leases: lease holders are not shown.';
}

function renderJobs() {
  const body = $('#jobs tbody');
  const rows = state.jobs.map((j) => {
    const p = j.progress || { done: 0, total: null };
    const bar = p.total ? h('progress', { max: p.total, value: p.done }) : null;
    return h(
      'tr',
      { 'data-job': j.id, class: follow.jobId === j.id ? 'followed' : '' },
      h('td', {}, h('code', {}, j.id)),
      h('td', {}, j.kind),
      h('td', {}, j.deviceId || '–'),
      h('td', {}, stateBadge(j.state), j.error ? h('div', { class: 'sub' }, `${j.error.code}: ${j.error.message}`) : null),
      h('td', {}, bar, ` ${p.done}${p.total ? ` / ${p.total}` : ''}`),
      h('td', {}, j.actor || '–'),
      h('td', {}, ago(j.startedAt || j.createdAt)),
      h('td', {}, h('button', { type: 'button', class: 'follow', onclick: () => followJob(j.id) }, follow.jobId === j.id ? 'Following' : 'Follow')),
    );
  });
  body.replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'no jobs yet'))]));
}

function renderRuns() {
  const note = $('#runs-note');
  note.hidden = state.runsAvailable !== false;
  note.textContent = 'This daemon has no /v1/runs: regression runs are not available.';
  $('#run-form').classList.toggle('unavailable', state.runsAvailable === false);
  const suites = [...new Set([...state.suites.map((x) => x.name), ...state.runs.map((r) => r.suite)])];
  $('#suites').replaceChildren(...suites.map((name) => h('option', { value: name })));
  const rows = state.runs.map((r) => {
    const id = encodeURIComponent(r.id);
    const sm = r.summary || { boards: 0, passed: 0, regressed: 0, failed: 0 };
    return h(
      'tr',
      { 'data-run': r.id },
      h('td', {}, h('code', {}, r.id), r.isBaseline ? h('div', { class: 'sub' }, 'baseline') : null),
      h('td', {}, r.suite),
      h('td', {}, stateBadge(r.state)),
      h('td', {}, ago(r.createdAt)),
      h('td', {}, `${sm.passed} passed, ${sm.regressed} regressed, ${sm.failed} failed of ${sm.boards}`),
      h('td', {}, [r.trigger, r.actor].filter(Boolean).join(' · ')),
      h('td', {}, h('a', { href: `/v1/runs/${id}/report.html`, class: 'report' }, 'report'), ' · ', h('a', { href: `/v1/runs/${id}/junit.xml` }, 'JUnit')),
    );
  });
  $('#runs tbody').replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 7, class: 'muted' }, state.runsAvailable === false ? '–' : 'no runs yet'))]));
}

/** The suites a run can be started with (GET /v1/suites), for the suite field's suggestions. */
async function loadSuites() {
  try {
    state.suites = await optional('/v1/suites', 'suites', 'suitesAvailable');
  } catch {
    state.suites = [];
  }
  renderRuns();
}

// ---- snapshots ----

function renderSnapshotDevices() {
  const sel = $('#snapshot-device');
  const ids = state.devices.map((d) => d.id);
  if (!state.snapshotDevice && ids.length) state.snapshotDevice = ids[0];
  const current = [...sel.options].map((o) => o.value).join('\n');
  if (current !== ids.join('\n')) sel.replaceChildren(...ids.map((id) => h('option', { value: id }, id)));
  if (state.snapshotDevice) sel.value = state.snapshotDevice;
}

function selectSnapshots(deviceId) {
  state.snapshotDevice = deviceId;
  $('#snapshot-device').value = deviceId;
  void loadSnapshots();
  $('#snapshots-section').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

async function loadSnapshots() {
  const deviceId = state.snapshotDevice;
  if (!deviceId) return;
  let snaps;
  try {
    snaps = (await api('GET', `/v1/snapshots?deviceId=${encodeURIComponent(deviceId)}&limit=20`)).snapshots;
  } catch (err) {
    showError(err);
    return;
  }
  if (deviceId !== state.snapshotDevice) return;
  const rows = snaps.map((sn) =>
    h(
      'tr',
      { 'data-snapshot': sn.id },
      h('td', {}, h('code', {}, sn.id)),
      h('td', {}, ago(sn.createdAt)),
      h('td', {}, sn.model || '–'),
      h('td', {}, String(sn.step)),
      h('td', {}, pct(sn.accuracy), sn.evaluatedOn ? h('div', { class: 'sub' }, sliceName(sn.evaluatedOn)) : null),
      h('td', {}, sn.good ? 'good' : '–'),
      h('td', {}, (sn.tags || []).join(', ') || '–'),
      h('td', {}, h('code', {}, short(sn.sha256))),
      h(
        'td',
        { class: 'actions' },
        actionButton('Roll back to this', `write ${sn.id} to ${deviceId} and verify its hash`, async () => {
          if (!window.confirm(`Roll ${deviceId} back to ${sn.id}? Its current weights are replaced.`)) return null;
          const r = await api('POST', `/v1/devices/${encodeURIComponent(deviceId)}/rollback`, { snapshotId: sn.id });
          return `${deviceId} rolled back to ${r.snapshotId} (verified ${r.verified})`;
        }),
      ),
    ),
  );
  $('#snapshots tbody').replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 9, class: 'muted' }, `no snapshots of ${deviceId}`))]));
}

// ---- following a job: SSE over fetch, and the loss curve ----

const follow = { jobId: null, controller: null, lastEventId: 0, steps: [], means: [], done: 0, total: null, state: null, trainAccuracy: null, error: null, drawQueued: false, ended: false };

async function* readSse(body) {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const ev = parseSseBlock(block);
        if (ev) yield ev;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function parseSseBlock(block) {
  let event = 'message';
  let id = null;
  const data = [];
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
  }
  return data.length ? { id, event, data: data.join('\n') } : null;
}

function followJob(jobId) {
  if (follow.controller) follow.controller.abort();
  Object.assign(follow, { jobId, controller: new AbortController(), lastEventId: 0, steps: [], means: [], done: 0, total: null, state: null, trainAccuracy: null, error: null, ended: false });
  const job = state.jobs.find((j) => j.id === jobId);
  $('#curve-title').textContent = `Loss curve: ${jobId}${job ? ` (${job.kind} on ${job.deviceId})` : ''}`;
  renderJobs();
  drawCurve();
  void stream(follow.controller.signal, jobId);
}

/** While the user has not picked a job: follows the newest running training job, else the newest one. */
function autoFollow() {
  if (follow.jobId) return;
  const train = state.jobs.filter((j) => j.kind === 'train');
  const pick = train.find((j) => j.state === 'running') ?? train[0];
  if (pick) followJob(pick.id);
}

async function stream(signal, jobId) {
  for (let attempt = 0; !signal.aborted && !follow.ended; attempt++) {
    try {
      const headers = { accept: 'text/event-stream' };
      const t = token();
      if (t) headers.authorization = `Bearer ${t}`;
      if (follow.lastEventId) headers['last-event-id'] = String(follow.lastEventId);
      const res = await fetch(`/v1/jobs/${encodeURIComponent(jobId)}/events`, { headers, signal });
      if (!res.ok) {
        let body = null;
        try {
          body = await res.json();
        } catch {
          body = null;
        }
        throw new ApiError(res.status, body, 'GET', `/v1/jobs/${jobId}/events`);
      }
      for await (const ev of readSse(res.body)) {
        if (signal.aborted) return;
        if (ev.id) follow.lastEventId = Number(ev.id) || follow.lastEventId;
        onJobEvent(ev.event, JSON.parse(ev.data));
      }
      // the stream ends with the job; a cut connection without a final state resumes from the last event
      if (follow.state === 'succeeded' || follow.state === 'failed') follow.ended = true;
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiError) {
        showError(err);
        return;
      }
    }
    if (!follow.ended) await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** attempt)));
  }
}

function onJobEvent(type, data) {
  switch (type) {
    case 'state':
      follow.state = data.state;
      break;
    case 'progress':
      follow.done = data.done;
      follow.total = data.total;
      break;
    case 'step':
      follow.steps.push(data.loss);
      break;
    case 'loss':
      follow.means.push([data.done, data.meanLoss]);
      break;
    case 'accuracy':
      if (data.trainAccuracy !== undefined) follow.trainAccuracy = data.trainAccuracy;
      break;
    case 'error':
      follow.error = data;
      break;
  }
  if (!follow.drawQueued) {
    follow.drawQueued = true;
    requestAnimationFrame(() => {
      follow.drawQueued = false;
      drawCurve();
    });
  }
}

/** Step losses averaged into at most MAX_CURVE_POINTS buckets: [x (step), mean loss]. */
function bucketed(losses) {
  const k = Math.max(1, Math.ceil(losses.length / MAX_CURVE_POINTS));
  const out = [];
  for (let i = 0; i < losses.length; i += k) {
    let sum = 0;
    let n = 0;
    for (let j = i; j < Math.min(losses.length, i + k); j++) {
      if (Number.isFinite(losses[j])) {
        sum += losses[j];
        n++;
      }
    }
    if (n) out.push([i + (Math.min(k, losses.length - i) + 1) / 2, sum / n]);
  }
  return out;
}

function drawCurve() {
  const svg = $('#loss-curve');
  const W = 720;
  const H = 240;
  const L = 52;
  const R = 12;
  const T = 12;
  const B = 28;
  const steps = bucketed(follow.steps);
  const means = follow.means.filter(([, v]) => Number.isFinite(v));
  svg.dataset.steps = String(follow.steps.length);
  svg.dataset.lossEvents = String(means.length);
  const parts = [s('rect', { class: 'frame', x: L, y: T, width: W - L - R, height: H - T - B })];
  const stats = [];
  if (follow.state) stats.push(follow.state);
  if (follow.total) stats.push(`${follow.done} / ${follow.total} steps`);
  if (means.length) stats.push(`mean loss ${means[means.length - 1][1].toFixed(3)}`);
  if (follow.trainAccuracy !== null && follow.trainAccuracy !== undefined) stats.push(`train accuracy ${pct(follow.trainAccuracy)}`);
  if (follow.error) stats.push(`${follow.error.code}: ${follow.error.message}`);
  $('#curve-stats').textContent = stats.join(' · ');
  const bar = $('#curve-progress');
  bar.hidden = !follow.total;
  if (follow.total) {
    bar.max = follow.total;
    bar.value = follow.done;
  }
  if (!steps.length && !means.length) {
    parts.push(s('text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, follow.jobId ? 'waiting for loss events…' : 'pick a job to follow'));
    svg.replaceChildren(...parts);
    return;
  }
  // the job's whole length when known, so the curve fills the plot as the job runs
  const xMax = Math.max(follow.total || 0, follow.steps.length, means.length ? means[means.length - 1][0] : 0, 1);
  const yMax = Math.max(...steps.map((p) => p[1]), ...means.map((p) => p[1])) * 1.05 || 1;
  const x = (v) => (L + (v / xMax) * (W - L - R)).toFixed(1);
  const y = (v) => (T + (1 - v / yMax) * (H - T - B)).toFixed(1);
  const path = (pts) => pts.map(([a, b], i) => `${i ? 'L' : 'M'}${x(a)} ${y(b)}`).join(' ');
  parts.push(s('text', { class: 'tick', x: L - 4, y: T + 8, 'text-anchor': 'end' }, yMax.toFixed(2)));
  parts.push(s('text', { class: 'tick', x: L - 4, y: H - B, 'text-anchor': 'end' }, '0'));
  parts.push(s('text', { class: 'tick', x: L, y: H - 8 }, 'step 0'));
  parts.push(s('text', { class: 'tick', x: W - R, y: H - 8, 'text-anchor': 'end' }, `step ${xMax}`));
  if (steps.length) parts.push(s('path', { class: 'step-loss', d: path(steps), 'data-points': steps.length }));
  if (means.length) parts.push(s('path', { class: 'mean-loss', d: path(means), 'data-points': means.length }));
  svg.replaceChildren(...parts);
}

// ---- forms and start-up ----

function init() {
  const input = $('#token');
  input.value = token();
  $('#token-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
    $('#message').hidden = true;
    await loadSession();
    await refresh();
    void loadSuites();
  });
  $('#token-clear').addEventListener('click', async () => {
    sessionStorage.removeItem(TOKEN_KEY);
    input.value = '';
    $('#message').hidden = true;
    await loadSession();
    await refresh();
  });
  $('#snapshot-device').addEventListener('change', (e) => {
    state.snapshotDevice = e.target.value;
    void loadSnapshots();
  });
  $('#run-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const button = $('#run-start');
    button.dataset.pending = '1';
    button.disabled = true;
    try {
      const suite = $('#run-suite').value.trim();
      const run = await api('POST', '/v1/runs', { suite });
      showMessage(`started run ${run && run.id ? run.id : ''} of ${suite}`, true);
    } catch (err) {
      showError(err);
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) await loadSession();
    } finally {
      button.dataset.pending = '';
      button.disabled = !canOperate();
      void refresh();
    }
  });
  drawCurve();
  void loadSession()
    .then(refresh)
    .then(loadSuites);
  setInterval(() => {
    if (!document.hidden && !state.readsNeedToken) void refresh();
  }, REFRESH_MS);
}

init();
