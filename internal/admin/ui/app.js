// herd's dashboard. One stream (/api/events, Server-Sent Events read with
// fetch so that it can carry the admin token) brings the charts' history,
// every instance's status, samples once a second and log lines; the
// buttons POST to /api/apps/{app}/{action}. No library, no outside asset.
'use strict';

const $ = (id) => document.getElementById(id);
const ALL = '*';
const MAX_LOG_LINES = 600;
const TOKEN_KEY = 'herd.adminToken';

const S = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  hello: null,
  points: [], // {t, apps: {name: [rps, err, p50, p99]}}
  status: null, // {now, apps}
  skew: 0, // server clock minus ours, ms
  chartApp: ALL,
  logApp: ALL,
  logs: [], // every line, by seq
  lastSeq: 0,
  cards: new Map(), // app name -> card elements
  shown: false,
  busy: new Set(), // "app/action" in flight
  ctrl: null,
  lastEvent: 0,
};

// ---- formatting ----------------------------------------------------------

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
function fmtNum(v, digits) {
  if (v == null || !isFinite(v)) return '—';
  if (v >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (v >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  if (v >= 100) return Math.round(v).toString();
  return v.toFixed(digits == null ? (v >= 10 ? 1 : 2) : digits).replace(/\.?0+$/, '') || '0';
}
function fmtMs(v) {
  if (v == null || !isFinite(v)) return '—';
  if (v === 0) return '0';
  if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1).replace(/\.0$/, '') + ' s';
  if (v >= 10) return Math.round(v) + ' ms';
  if (v >= 1) return v.toFixed(1) + ' ms';
  return Math.round(v * 1000) + ' µs';
}
function fmtBytes(b) {
  if (!b) return '—';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return (b >= 100 || i === 0 ? Math.round(b) : b.toFixed(1)) + ' ' + u[i];
}
function fmtDur(sec) {
  if (sec == null || !isFinite(sec) || sec < 0) return '—';
  sec = Math.floor(sec);
  const d = Math.floor(sec / 86400), h = Math.floor(sec / 3600) % 24, m = Math.floor(sec / 60) % 60, s = sec % 60;
  if (d) return d + 'd ' + h + 'h';
  if (h) return h + 'h ' + m + 'm';
  if (m) return m + 'm ' + s + 's';
  return s + 's';
}
function fmtClock(t) {
  const d = new Date(t);
  return d.toTimeString().slice(0, 8);
}
// lagMs reads the event-loop (or scheduler) lag of an instance, once the
// monitors report it, under whichever name they give it.
function lagMs(inst) {
  if (typeof inst.lag_ms === 'number') return inst.lag_ms;
  if (typeof inst.event_loop_lag_ms === 'number') return inst.event_loop_lag_ms;
  if (typeof inst.lag_seconds === 'number') return inst.lag_seconds * 1000;
  if (typeof inst.event_loop_lag_seconds === 'number') return inst.event_loop_lag_seconds * 1000;
  return null;
}

// ---- the stream ----------------------------------------------------------

function setConn(state, text) {
  const el = $('conn');
  el.dataset.state = state;
  el.textContent = text || state;
}

async function connect() {
  if (S.ctrl) S.ctrl.abort();
  const ctrl = new AbortController();
  S.ctrl = ctrl;
  const headers = { Accept: 'text/event-stream' };
  if (S.token) headers.Authorization = 'Bearer ' + S.token;
  try {
    const res = await fetch('/api/events', { headers, signal: ctrl.signal, cache: 'no-store' });
    if (res.status === 401) {
      const body = await res.json().catch(() => ({}));
      toast('The token was refused: ' + (body.reason || res.statusText), true);
      forgetToken();
      setConn('denied', 'token refused');
      setTimeout(connect, 500);
      return;
    }
    if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
    setConn('live');
    S.lastEvent = Date.now();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        dispatch(block);
      }
    }
  } catch (e) {
    if (ctrl.signal.aborted && S.ctrl !== ctrl) return; // replaced by a newer stream
  }
  if (S.ctrl !== ctrl) return;
  setConn('reconnecting');
  setTimeout(connect, 1500);
}

// A stream that went quiet (a half-open connection) is replaced.
setInterval(() => {
  if (S.ctrl && $('conn').dataset.state === 'live' && Date.now() - S.lastEvent > 6000) {
    S.ctrl.abort();
  }
}, 2000);

function dispatch(block) {
  let event = 'message', data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('data: ')) data += line.slice(6);
  }
  if (!data) return;
  S.lastEvent = Date.now();
  const v = JSON.parse(data);
  switch (event) {
    case 'hello': onHello(v); break;
    case 'history': S.points = v; drawCharts(); break;
    case 'sample':
      S.points.push(v);
      if (S.points.length > (S.hello ? S.hello.history_len : 300)) S.points.shift();
      drawCharts();
      break;
    case 'status': onStatus(v); break;
    case 'logs': onLogs(v); break;
  }
}

function onHello(h) {
  S.hello = h;
  $('herdinfo').textContent = 'pid ' + h.pid;
  S.started = Date.parse(h.started);
  if (!h.logs) {
    S.logs = [];
    renderLogs();
  }
  $('tokenBtn').textContent = S.token ? 'Token ✓' : (h.token_required ? 'Token needed' : 'Token');
  $('tokenBtn').classList.toggle('danger', h.token_required && !S.token);
}

// ---- status: summary and app cards ---------------------------------------

function onStatus(st) {
  S.status = st;
  S.skew = Date.parse(st.now) - Date.now();
  const now = Date.parse(st.now);
  $('herdinfo').textContent = 'pid ' + (S.hello ? S.hello.pid : '?') + ' · up ' + fmtDur((now - S.started) / 1000);
  let total = 0, ready = 0, restarts = 0;
  const seen = new Set();
  const apps = $('apps');
  if (st.apps.length === 0) {
    apps.innerHTML = '<p class="empty muted">herd runs no apps.</p>';
    S.cards.clear();
  } else if (apps.querySelector('.empty')) {
    apps.textContent = '';
  }
  for (const app of st.apps) {
    seen.add(app.name);
    let card = S.cards.get(app.name);
    if (!card) {
      card = makeCard(app.name);
      S.cards.set(app.name, card);
      apps.appendChild(card.el);
    }
    const insts = app.instances || [];
    const r = insts.filter((i) => i.state === 'ready').length;
    const slots = new Set(insts.filter((i) => i.state !== 'draining').map((i) => i.index)).size;
    total += slots; ready += r;
    insts.forEach((i) => { restarts += i.restarts || 0; });
    card.badge.textContent = r + '/' + slots + ' ready';
    card.badge.className = 'badge ' + (slots === 0 ? 'off' : r === slots ? 'ok' : r === 0 ? 'bad' : 'warn');
    card.count.textContent = slots;
    card.tbody.innerHTML = insts.length ? insts.map((i) => row(i, now)).join('') :
      '<tr><td colspan="11" class="muted">No instances: scale up or start the app.</td></tr>';
    // The page's policy refuses inline style attributes; the CSSOM is fine.
    for (const bar of card.tbody.querySelectorAll('i[data-w]')) bar.style.width = bar.dataset.w + '%';
    for (const b of card.el.querySelectorAll('button[data-act]')) {
      b.disabled = S.busy.has(app.name + '/' + b.dataset.act);
    }
  }
  for (const [name, card] of S.cards) {
    if (!seen.has(name)) { card.el.remove(); S.cards.delete(name); }
  }
  // When the page first showed every instance, for whoever measures it
  // (performance.getEntriesByName('herd:first-status')).
  if (!S.shown) { S.shown = true; performance.mark('herd:first-status'); }
  $('sumApps').textContent = st.apps.length;
  $('sumReady').innerHTML = esc(ready) + ' <small>of ' + esc(total) + '</small>';
  $('sumRestarts').textContent = restarts;
  renderFilters();
}

function row(i, now) {
  const up = i.started_at && i.state !== 'stopped' ? fmtDur((now - Date.parse(i.started_at)) / 1000) : '—';
  const cpu = i.cpu_percent || 0;
  const lag = lagMs(i);
  return '<tr>' +
    '<td class="mono">' + esc(i.index) + '</td>' +
    '<td><span class="state ' + esc(i.state) + '">' + esc(i.state) + '</span></td>' +
    '<td class="mono pid">' + (i.pid ? esc(i.pid) : '—') + '</td>' +
    '<td class="mono">' + (i.port ? esc(i.port) : '—') + '</td>' +
    '<td class="num">' + (i.pid ? cpu.toFixed(1) + '%' : '—') +
      '<span class="bar' + (cpu > 80 ? ' hot' : '') + '"><i data-w="' + Math.min(100, cpu).toFixed(0) + '"></i></span></td>' +
    '<td class="num">' + fmtBytes(i.rss_bytes) + '</td>' +
    '<td class="num">' + fmtMs(lag) + '</td>' +
    '<td class="num">' + esc(i.inflight || 0) + '</td>' +
    '<td class="num">' + esc(i.restarts || 0) + '</td>' +
    '<td class="num">' + up + '</td>' +
    '<td class="exit" title="' + esc(i.last_exit || '') + '">' + esc(i.last_exit || '') + '</td>' +
    '</tr>';
}

function makeCard(name) {
  const el = document.createElement('article');
  el.className = 'panel app';
  el.dataset.app = name;
  el.innerHTML =
    '<header><h3>' + esc(name) + '</h3><span class="badge"></span>' +
    '<div class="actions">' +
    '<button type="button" data-act="reload" title="Rolling reload: new instances first, old ones drained">Reload</button>' +
    '<button type="button" data-act="restart" title="Restart every instance">Restart</button>' +
    '<span class="scale" title="Instances"><button type="button" data-act="scale" data-to="-1" aria-label="One instance fewer">−</button>' +
    '<span class="count"></span><button type="button" data-act="scale" data-to="+1" aria-label="One instance more">+</button></span>' +
    '<button type="button" data-act="stop" class="danger">Stop</button>' +
    '<button type="button" data-act="start">Start</button>' +
    '</div></header>' +
    '<table><thead><tr><th>#</th><th>State</th><th>PID</th><th>Port</th><th class="num">CPU</th><th class="num">Memory</th>' +
    '<th class="num">Lag</th><th class="num">In flight</th><th class="num">Restarts</th><th class="num">Uptime</th><th>Last exit</th></tr></thead>' +
    '<tbody></tbody></table>';
  el.querySelector('.actions').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-act]');
    if (b) act(name, b.dataset.act, b.dataset.to);
  });
  return { el, badge: el.querySelector('.badge'), count: el.querySelector('.count'), tbody: el.querySelector('tbody') };
}

// ---- actions -------------------------------------------------------------

async function act(app, action, to) {
  if ((action === 'stop' || action === 'restart') && !confirm(action[0].toUpperCase() + action.slice(1) + ' every instance of ' + app + '?')) return;
  const key = app + '/' + action;
  if (S.busy.has(key)) return;
  S.busy.add(key);
  setBusy(app, action, true);
  const headers = {};
  if (S.token) headers.Authorization = 'Bearer ' + S.token;
  let url = '/api/apps/' + encodeURIComponent(app) + '/' + action;
  if (action === 'scale') url += '?to=' + encodeURIComponent(to);
  const label = action === 'scale' ? 'scale ' + app + ' ' + to : action + ' ' + app;
  toast(label + '…');
  try {
    const res = await fetch(url, { method: 'POST', headers });
    const body = await res.json().catch(() => ({ reason: res.statusText }));
    if (!res.ok) {
      toast(label + ' failed (' + res.status + '): ' + (body.reason || body.error), true);
      if (res.status === 401) openToken();
    } else {
      toast(label + ': done in ' + body.seconds + ' s' + (body.instances != null ? ', ' + body.instances + ' instances' : ''));
    }
  } catch (e) {
    toast(label + ' failed: ' + e.message, true);
  } finally {
    S.busy.delete(key);
    setBusy(app, action, false);
  }
}

function setBusy(app, action, on) {
  const card = S.cards.get(app);
  if (!card) return;
  for (const b of card.el.querySelectorAll('button[data-act="' + action + '"]')) b.disabled = on;
}

let toastTimer = 0;
function toast(text, bad) {
  const t = $('toast');
  t.textContent = text;
  t.classList.toggle('bad', !!bad);
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, bad ? 9000 : 4000);
}

// ---- token ---------------------------------------------------------------

function openToken() {
  $('tokenForm').hidden = false;
  $('tokenBtn').hidden = true;
  $('tokenInput').focus();
}
function forgetToken() {
  S.token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  $('tokenBtn').textContent = S.hello && S.hello.token_required ? 'Token needed' : 'Token';
}
$('tokenBtn').addEventListener('click', openToken);
$('tokenForm').addEventListener('submit', (e) => {
  e.preventDefault();
  S.token = $('tokenInput').value.trim();
  $('tokenInput').value = '';
  if (S.token) sessionStorage.setItem(TOKEN_KEY, S.token); else sessionStorage.removeItem(TOKEN_KEY);
  $('tokenForm').hidden = true;
  $('tokenBtn').hidden = false;
  connect(); // the stream carries the logs only with the token
});
$('tokenClear').addEventListener('click', () => {
  forgetToken();
  $('tokenForm').hidden = true;
  $('tokenBtn').hidden = false;
  connect();
});

// ---- filters (which app the charts and the logs show) --------------------

function appNames() {
  return S.status ? S.status.apps.map((a) => a.name) : [];
}
function renderSeg(el, current, onPick) {
  const names = [ALL, ...appNames()];
  const key = names.join('\n') + '\n' + current;
  if (el.dataset.key === key) return;
  el.dataset.key = key;
  el.innerHTML = names.map((n) => '<button type="button" role="tab" data-v="' + esc(n) + '" aria-selected="' + (n === current) + '">' +
    (n === ALL ? 'All' : esc(n)) + '</button>').join('');
  el.onclick = (e) => {
    const b = e.target.closest('button[data-v]');
    if (b) onPick(b.dataset.v);
  };
}
function renderFilters() {
  renderSeg($('appFilter'), S.chartApp, (v) => { S.chartApp = v; renderFilters(); drawCharts(); });
  renderSeg($('logTabs'), S.logApp, (v) => { S.logApp = v; renderFilters(); renderLogs(); });
}

// ---- charts --------------------------------------------------------------

const NS = 'http://www.w3.org/2000/svg';

function series(idx) {
  return S.points.map((p) => {
    const a = p.apps[S.chartApp];
    return { t: p.t, v: a ? a[idx] : (S.chartApp === ALL ? null : 0) };
  });
}

// ticks returns a round step and the axis top it gives for values up to v:
// 0, step, 2·step … top, three or four lines.
function ticks(v) {
  if (!(v > 0)) return { step: 1, top: 3 };
  const raw = v / 3, p = Math.pow(10, Math.floor(Math.log10(raw)));
  let step = 10 * p;
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) { step = m * p; break; }
  return { step, top: step * Math.max(1, Math.ceil(v / step)) };
}

// window_ is the time the charts span: what the history holds, at least a
// minute, at most the ring's length, in whole minutes, ending at the newest
// point.
function window_() {
  const most = S.hello ? S.hello.history_len * S.hello.interval_ms : 300000;
  const end = S.points.length ? S.points[S.points.length - 1].t : Date.now() + S.skew;
  const held = S.points.length ? end - S.points[0].t : 0;
  return { span: Math.min(most, Math.max(60000, Math.ceil(held / 60000) * 60000)), end };
}

// drawChart draws lines [{cls, data:[{t,v}], area}] into svg over the
// history's time span, with a y axis formatted by fmt.
function drawChart(svg, lines, fmt) {
  const w = svg.clientWidth || 400, h = svg.clientHeight || 150;
  const left = 46, right = 8, top = 6, bottom = 18;
  const iw = w - left - right, ih = h - top - bottom;
  const { span, end } = window_();
  const start = end - span;
  let ymax = 0, any = false;
  for (const l of lines) for (const p of l.data) if (p.v != null) { any = true; ymax = Math.max(ymax, p.v); }
  const tk = ticks(ymax * 1.05);
  ymax = tk.top;
  const x = (t) => left + ((t - start) / span) * iw;
  const y = (v) => top + ih - (v / ymax) * ih;
  let out = '';
  for (let v = 0; v <= ymax + tk.step / 2; v += tk.step) {
    const yy = y(v).toFixed(1);
    out += '<line class="grid" x1="' + left + '" x2="' + (w - right) + '" y1="' + yy + '" y2="' + yy + '"/>';
    out += '<text x="' + (left - 6) + '" y="' + (+yy + 4) + '" text-anchor="end">' + esc(fmt(v)) + '</text>';
  }
  const step = span <= 120000 ? 15000 : 60000;
  for (let k = 0; k * step <= span; k++) {
    const ago = k * step, xx = x(end - ago).toFixed(1);
    const label = k === 0 ? 'now' : '−' + (ago % 60000 ? ago / 1000 + 's' : ago / 60000 + 'm');
    out += '<text x="' + xx + '" y="' + (h - 4) + '" text-anchor="' + (k === 0 ? 'end' : 'middle') + '">' + label + '</text>';
  }
  for (const l of lines) {
    // Gaps (no requests finished, or no sample) split the line.
    let seg = [];
    const segs = [];
    for (const p of l.data) {
      if (p.v == null || p.t < start) { if (seg.length) segs.push(seg); seg = []; continue; }
      seg.push([x(p.t), y(p.v)]);
    }
    if (seg.length) segs.push(seg);
    for (const s of segs) {
      const pts = s.map((q) => q[0].toFixed(1) + ',' + q[1].toFixed(1)).join(' ');
      if (l.area && s.length > 1) {
        out += '<polygon class="' + l.cls + '-area" points="' + s[0][0].toFixed(1) + ',' + y(0).toFixed(1) + ' ' + pts + ' ' +
          s[s.length - 1][0].toFixed(1) + ',' + y(0).toFixed(1) + '"/>';
      }
      out += s.length > 1 ? '<polyline class="line ' + l.cls + '" points="' + pts + '"/>' :
        '<circle class="line ' + l.cls + '" r="1.5" cx="' + s[0][0].toFixed(1) + '" cy="' + s[0][1].toFixed(1) + '"/>';
    }
  }
  if (!any) {
    out += '<text class="nodata" x="' + (left + iw / 2) + '" y="' + (top + ih / 2) + '" text-anchor="middle">' +
      (S.points.length ? 'no requests' : 'collecting…') + '</text>';
  }
  svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
  svg.innerHTML = out;
}

function latest(idx) {
  for (let i = S.points.length - 1; i >= 0 && i >= S.points.length - 3; i--) {
    const a = S.points[i].apps[S.chartApp];
    if (a && a[idx] != null) return a[idx];
  }
  return null;
}

function drawCharts() {
  const mins = Math.round(window_().span / 60000);
  $('span').textContent = mins === 1 ? 'last minute' : 'last ' + mins + ' minutes';
  const rps = series(0), err = series(1), p50 = series(2), p99 = series(3);
  drawChart($('chartRps').querySelector('svg'), [{ cls: 'rps', data: rps, area: true }], (v) => fmtNum(v));
  drawChart($('chartLat').querySelector('svg'), [{ cls: 'p50', data: p50 }, { cls: 'p99', data: p99 }], fmtMs);
  drawChart($('chartErr').querySelector('svg'), [{ cls: 'err', data: err, area: true }], (v) => fmtNum(v));
  const last = S.points.length ? S.points[S.points.length - 1].apps[S.chartApp] : null;
  const r = last ? last[0] : null, e = last ? last[1] : null;
  $('chartRps').querySelector('.now').textContent = fmtNum(r);
  $('chartLat').querySelector('.now').textContent = fmtMs(latest(2)) + ' / ' + fmtMs(latest(3));
  $('chartErr').querySelector('.now').textContent = fmtNum(e);
  const all = S.points.length ? S.points[S.points.length - 1].apps[ALL] : null;
  $('sumRps').textContent = fmtNum(all ? all[0] : (S.points.length ? 0 : null));
  const sp = (() => { for (let i = S.points.length - 1; i >= 0 && i >= S.points.length - 3; i--) { const a = S.points[i].apps[ALL]; if (a && a[3] != null) return a[3]; } return null; })();
  $('sumP99').textContent = fmtMs(sp);
  const se = all ? all[1] : (S.points.length ? 0 : null);
  $('sumErr').textContent = fmtNum(se);
  $('sumErr').classList.toggle('bad', se > 0);
}

// ---- logs ----------------------------------------------------------------

function onLogs(lines) {
  let added = false;
  for (const l of lines) {
    if (l.seq && l.seq <= S.lastSeq) continue; // sent by both the tail and the follower
    if (l.seq) S.lastSeq = l.seq;
    S.logs.push(l);
    added = true;
  }
  if (S.logs.length > MAX_LOG_LINES * 4) S.logs = S.logs.slice(-MAX_LOG_LINES * 2);
  if (added || lines.length === 0) renderLogs();
}

function renderLogs() {
  const view = $('logView');
  if (S.hello && !S.hello.logs) {
    view.innerHTML = '<div class="note">' + (S.hello.token_required ?
      'Logs are shown with the admin token: use <b>Token</b> above.' : 'This herd keeps no logs.') + '</div>';
    return;
  }
  const lines = (S.logApp === ALL ? S.logs : S.logs.filter((l) => l.app === S.logApp)).slice(-MAX_LOG_LINES);
  if (!lines.length) {
    view.innerHTML = '<div class="note">No output yet.</div>';
    return;
  }
  view.innerHTML = lines.map((l) => {
    let text = l.text, app = '';
    const m = /^(\S+\[\d+\]) /.exec(text);
    if (m) { app = m[1]; text = text.slice(m[0].length); }
    const cls = /\b(error|fatal|panic|exception)\b/i.test(text) ? ' class="e"' : /\bwarn(ing)?\b/i.test(text) ? ' class="w"' : '';
    return '<div><span class="t">' + fmtClock(l.time) + '</span>' + (app ? '<span class="a">' + esc(app) + '</span>' : '') +
      '<span' + cls + '>' + esc(text) + '</span></div>';
  }).join('');
  if ($('follow').checked) view.scrollTop = view.scrollHeight;
}

$('follow').addEventListener('change', () => { if ($('follow').checked) renderLogs(); });
window.addEventListener('resize', drawCharts);
$('host').textContent = location.host;
renderFilters();
drawCharts();
connect();
