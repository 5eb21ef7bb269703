// Dashboard entry point (loaded by index.html). Holds the client-side state, loads
// history from the backend's query API, applies live group messages from the realtime
// hub, and repaints the panels that changed once per animation frame.

import { drawFlow, drawGex, drawSmile } from './charts.js';
import { applyStatic, lang, LANGS, setLang, t } from './i18n.js';
import { connectRealtime } from './realtime.js';

const SYMBOL = 'SPY';
const MAX_ANOMALIES = 500; // kept in memory (smile markers, expiry badges)
const MAX_ROWS = 200; // rendered in the feed
const MAX_FLOW = 720; // flow samples kept for the chart
const FRESH_MS = 5000; // new feed rows stay highlighted this long
const BOTS_POLL_MS = 15_000;
const HISTORY_RETRY_MS = 5000;
const SEV_RANK = { LOW: 0, MEDIUM: 1, HIGH: 2 };

// Same origin by default (the backend serves this folder in dev); the Static Web App
// build sets <meta name="spy-api-base">, and ?api=<url> overrides both.
const apiBase = (
  new URLSearchParams(location.search).get('api') ??
  document.querySelector('meta[name="spy-api-base"]')?.content ??
  ''
).replace(/\/$/, '');
const api = (path) => `${apiBase}/api/v1/${path}`;

const state = {
  market: null,
  gex: null,
  flow: [],
  anomalies: new Map(), // id -> anomaly (ids are stable, so history and live dedupe)
  fresh: new Map(), // id -> highlight-until (ms)
  selectedExpiry: null,
  expiryPicked: false, // the user chose an expiry: stop following the nearest one
  highlightId: null,
  minSeverity: 0,
  conn: { name: 'connecting', info: {} },
  everLive: false,
  historyError: null,
  bots: null,
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- formatting

const formatters = new Map();
function nf(options) {
  const key = lang() + JSON.stringify(options);
  if (!formatters.has(key)) formatters.set(key, new Intl.NumberFormat(locale(), options));
  return formatters.get(key);
}
const locale = () => (lang() === 'es' ? 'es-ES' : 'en-US');
const fmt = {
  price: (v) => (Number.isFinite(v) ? nf({ minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(v) : '—'),
  strike: (v) => (Number.isFinite(v) ? nf({ maximumFractionDigits: 1 }).format(v) : '—'),
  money: (v) =>
    Number.isFinite(v)
      ? nf({ style: 'currency', currency: 'USD', notation: 'compact', maximumSignificantDigits: 3 }).format(v)
      : '—',
  iv: (v) => nf({ style: 'percent', maximumFractionDigits: 1 }).format(v),
  k: (v) => nf({ maximumFractionDigits: 2 }).format(v),
  ratio: (v) => (Number.isFinite(v) ? nf({ maximumFractionDigits: 2 }).format(v) : '—'),
  time: (ms) => new Date(ms).toLocaleTimeString(locale(), { hour12: false }),
};
const contractLabel = (c) => `${c.expiry} ${fmt.strike(c.strike)} ${c.right}`;
const kindLabel = (kind) => {
  const label = t(`kind_${kind}`);
  return label === `kind_${kind}` ? kind : label; // a kind newer than this page: show it raw
};

// ---------------------------------------------------------------- state updates

function addAnomaly(a, live) {
  if (!a?.id || state.anomalies.has(a.id) || (a.symbol && a.symbol !== SYMBOL)) return false;
  state.anomalies.set(a.id, a);
  if (state.anomalies.size > MAX_ANOMALIES) {
    const oldest = [...state.anomalies.values()].sort(byTime)[0];
    state.anomalies.delete(oldest.id);
  }
  if (live) {
    state.fresh.set(a.id, Date.now() + FRESH_MS);
    setTimeout(() => invalidate('feed'), FRESH_MS + 50);
    if (a.severity === 'HIGH') {
      $('announcer').textContent = t('announceHigh', {
        contract: contractLabel(a.contract),
        kind: kindLabel(a.kind),
      });
    }
  }
  state.selectedExpiry ??= a.contract?.expiry ?? null;
  return true;
}

// Compare parsed times: RFC 3339 text with and without fractions does not sort as text.
const ms = (x) => Date.parse(x.ts);
const byTime = (x, y) => ms(x) - ms(y);
const newer = (next, cur) => Number.isFinite(Date.parse(next?.ts)) && (!cur || ms(next) >= ms(cur));

function setMarket(m) {
  if (!newer(m, state.market) || (m.symbol && m.symbol !== SYMBOL)) return;
  state.market = m;
  const nearest = (m.expiries ?? []).map((e) => e.expiry).sort()[0];
  if (nearest && (!state.expiryPicked || !knownExpiries().includes(state.selectedExpiry))) {
    state.selectedExpiry = nearest;
  }
}

function setGex(g) {
  if (newer(g, state.gex) && (!g.symbol || g.symbol === SYMBOL)) state.gex = g;
}

function addFlow(f) {
  if (!f?.ts || (f.symbol && f.symbol !== SYMBOL) || state.flow.some((x) => ms(x) === ms(f))) return;
  state.flow.push(f);
  state.flow.sort(byTime);
  if (state.flow.length > MAX_FLOW) state.flow.splice(0, state.flow.length - MAX_FLOW);
}

/** Apply one realtime envelope {type, data}; data may also be a list. */
function onEnvelope(env) {
  const items = Array.isArray(env.data) ? env.data : [env.data];
  for (const item of items) {
    switch (env.type) {
      case 'anomaly':
        if (addAnomaly(item, true)) invalidate('feed', 'smile', 'expiries');
        break;
      case 'market':
        setMarket(item);
        invalidate('header', 'smile', 'expiries');
        break;
      case 'gex':
        setGex(item);
        invalidate('header', 'gex');
        break;
      case 'flow':
        addFlow(item);
        invalidate('flow');
        break;
      default: // "signal" has no panel yet; unknown types come from newer backends
    }
  }
}

function knownExpiries() {
  const set = new Set((state.market?.expiries ?? []).map((e) => e.expiry));
  for (const a of state.anomalies.values()) if (a.contract?.expiry) set.add(a.contract.expiry);
  return [...set].sort();
}

const currentSpot = () => {
  const src = [state.market, state.gex].filter((x) => Number.isFinite(x?.spot));
  src.sort((x, y) => byTime(y, x));
  return src[0] ?? null;
};

// ---------------------------------------------------------------- history (REST)

/** GET JSON; null on 404 (optional endpoints). Lists may come bare or as {items}. */
async function getJSON(path) {
  const res = await fetch(api(path), { headers: { Accept: 'application/json' }, cache: 'no-store' });
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`${path.split('?')[0]}: HTTP ${res.status}`);
  return res.json();
}
const asList = (body) => (Array.isArray(body) ? body : (body?.items ?? (body?.ts ? [body] : [])));

let historyRetry = null;
async function loadHistory() {
  const q = `symbol=${SYMBOL}`;
  const [anomalies, market, gex, flow] = await Promise.allSettled([
    getJSON(`anomalies?${q}&limit=${MAX_ROWS}`),
    getJSON(`market?${q}&limit=1`),
    getJSON(`gex?${q}&limit=1`),
    getJSON(`flow?${q}&limit=${MAX_FLOW}`),
  ]);
  if (anomalies.status === 'fulfilled') asList(anomalies.value).forEach((a) => addAnomaly(a, false));
  if (market.status === 'fulfilled') asList(market.value).forEach(setMarket);
  if (gex.status === 'fulfilled') asList(gex.value).forEach(setGex);
  if (flow.status === 'fulfilled') asList(flow.value).forEach(addFlow);
  const failed = [anomalies, market, gex, flow].find((r) => r.status === 'rejected');
  state.historyError = failed ? String(failed.reason?.message ?? failed.reason) : null;
  // Storage down (503) while the hub works: keep trying so the banner clears by itself.
  clearTimeout(historyRetry);
  if (failed) historyRetry = setTimeout(loadHistory, HISTORY_RETRY_MS);
  invalidate('all');
}

/**
 * Bots panel: shown only when the backend has /api/v1/bots (a later issue adds it).
 * Its OpenAPI document says so; probing the endpoint itself would log a 404 in the
 * console of every desk whose backend lacks it. A 404 later hides the panel again.
 */
async function pollBots() {
  try {
    if (state.bots === null) {
      const res = await fetch(`${apiBase}/openapi.json`, { cache: 'no-store' });
      const spec = res.ok ? await res.json() : null;
      if (!spec?.paths?.['/api/v1/bots']) return; // no bots endpoint: panel stays hidden
    }
    const body = await getJSON('bots');
    state.bots = body === null ? null : asList(body);
    invalidate('bots');
  } catch {
    // Transient (backend restarting): keep the last state and try again.
  }
  setTimeout(pollBots, BOTS_POLL_MS);
}

// ---------------------------------------------------------------- rendering

const renderers = {
  header() {
    const s = currentSpot();
    $('spot').textContent = s ? fmt.price(s.spot) : t('priceUnknown');
    $('spot-time').textContent = s ? fmt.time(Date.parse(s.ts)) : '';
    $('spot-time').dateTime = s?.ts ?? '';
  },

  conn() {
    const { name, info } = state.conn;
    $('conn').dataset.state = name;
    $('conn-text').textContent = {
      connecting: () => t('connConnecting'),
      live: () => t('connLive'),
      reconnecting: () => t('connReconnecting', { s: Math.ceil(info.delayMs / 1000), n: info.attempt }),
      denied: () => t('connDenied', { why: info.why, s: Math.ceil(info.delayMs / 1000) }),
    }[name]();
    $('history-error').hidden = !state.historyError;
    $('history-error').textContent = state.historyError ? t('historyError', { why: state.historyError }) : '';
  },

  expiries() {
    const counts = new Map();
    for (const a of state.anomalies.values()) {
      counts.set(a.contract?.expiry, (counts.get(a.contract?.expiry) ?? 0) + 1);
    }
    $('expiries').replaceChildren(
      ...knownExpiries().map((exp) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = exp;
        b.setAttribute('aria-pressed', String(exp === state.selectedExpiry));
        if (counts.get(exp)) {
          const badge = document.createElement('span');
          badge.className = 'badge';
          badge.textContent = counts.get(exp);
          b.append(' ', badge);
          b.setAttribute('aria-label', t('expiryAnomalies', { expiry: exp, n: counts.get(exp) }));
        }
        b.onclick = () => {
          state.selectedExpiry = exp;
          state.expiryPicked = true;
          invalidate('expiries', 'smile');
        };
        return b;
      }),
    );
  },

  smile() {
    const exp = state.selectedExpiry;
    const e = state.market?.expiries?.find((x) => x.expiry === exp);
    const spot = currentSpot()?.spot;
    // Anomalies without k are placed at ln(K/spot), spot standing in for the forward.
    const marks = [...state.anomalies.values()]
      .filter((a) => a.contract?.expiry === exp)
      .map((a) => ({
        id: a.id,
        severity: a.severity,
        iv: a.iv,
        k: Number.isFinite(a.k) ? a.k : spot ? Math.log(a.contract.strike / spot) : NaN,
      }));
    const canvas = $('smile');
    drawSmile(canvas, {
      points: e?.points,
      fit: e?.fit,
      anomalies: marks,
      highlightId: state.highlightId,
      fmt,
      labels: {
        x: t('smileX'),
        y: t('smileY'),
        quotes: t('quotes'),
        fit: t('fitted'),
        anomaly: t('anomaly'),
        empty: t('smileEmpty'),
      },
    });
    canvas.setAttribute(
      'aria-label',
      exp ? t('smileAria', { expiry: exp, n: e?.points?.k?.length ?? 0, m: marks.length }) : t('smileEmpty'),
    );
    $('smile-time').textContent = state.market ? t('updated', { time: fmt.time(Date.parse(state.market.ts)) }) : '';
  },

  feed() {
    const now = Date.now();
    for (const [id, until] of state.fresh) if (until <= now) state.fresh.delete(id);
    const rows = [...state.anomalies.values()]
      .filter((a) => (SEV_RANK[a.severity] ?? 0) >= state.minSeverity)
      .sort((x, y) => byTime(y, x))
      .slice(0, MAX_ROWS);
    $('feed-body').replaceChildren(...rows.map((a) => feedRow(a, now)));
    $('feed-empty').hidden = rows.length > 0;
  },

  gex() {
    const g = state.gex;
    $('net-gex').textContent = fmt.money(g?.net_gex);
    $('flip').textContent = fmt.strike(g?.flip);
    const canvas = $('gex');
    drawGex(canvas, {
      strikes: g?.strikes,
      gex: g?.gex,
      flip: g?.flip,
      spot: g?.spot,
      fmt,
      labels: { x: t('strike'), y: t('gexY'), flip: t('flip'), empty: t('gexEmpty') },
    });
    canvas.setAttribute(
      'aria-label',
      g ? t('gexAria', { n: g.strikes.length, net: fmt.money(g.net_gex), flip: fmt.strike(g.flip) }) : t('gexEmpty'),
    );
    $('gex-time').textContent = g ? t('updated', { time: fmt.time(Date.parse(g.ts)) }) : '';
  },

  flow() {
    const last = state.flow.at(-1);
    $('call-premium').textContent = fmt.money(last?.call_premium);
    $('put-premium').textContent = fmt.money(last?.put_premium);
    $('net-premium').textContent = fmt.money(last?.net_premium);
    $('pc-ratio').textContent = fmt.ratio(last?.put_call_volume_ratio);
    const canvas = $('flow');
    drawFlow(canvas, {
      series: state.flow,
      fmt,
      labels: {
        x: t('colTime'),
        y: t('premiumY'),
        calls: t('callPremium'),
        puts: t('putPremium'),
        empty: t('flowEmpty'),
      },
    });
    canvas.setAttribute(
      'aria-label',
      last
        ? t('flowAria', {
            calls: fmt.money(last.call_premium),
            puts: fmt.money(last.put_premium),
            net: fmt.money(last.net_premium),
          })
        : t('flowEmpty'),
    );
    $('flow-time').textContent = last ? t('updated', { time: fmt.time(Date.parse(last.ts)) }) : '';
  },

  bots() {
    $('bots-panel').hidden = state.bots === null;
    if (!state.bots) return;
    $('bots-body').replaceChildren(
      ...state.bots.map((b) => {
        const tr = document.createElement('tr');
        const armed = b.armed ?? b.effective_armed;
        for (const v of [b.name, b.mode, armed === undefined ? '—' : t(armed ? 'yes' : 'no'), b.reason ?? b.status ?? '—']) {
          const td = document.createElement('td');
          td.textContent = v ?? '—';
          tr.append(td);
        }
        return tr;
      }),
    );
  },
};

function feedRow(a, now) {
  const tr = document.createElement('tr');
  tr.dataset.id = a.id;
  tr.className = `sev-${a.severity}`;
  if ((state.fresh.get(a.id) ?? 0) > now) tr.classList.add('fresh');
  if (a.id === state.highlightId) tr.classList.add('selected');

  const time = document.createElement('time');
  time.dateTime = a.ts;
  time.textContent = fmt.time(Date.parse(a.ts));
  time.title = a.ts;

  // The contract is a button: it shows this anomaly on the smile (keyboard reachable).
  const show = document.createElement('button');
  show.type = 'button';
  show.className = 'link';
  show.textContent = contractLabel(a.contract);
  show.setAttribute('aria-label', t('feedShowOnSmile', { contract: contractLabel(a.contract) }));
  show.onclick = () => {
    state.selectedExpiry = a.contract.expiry;
    state.expiryPicked = true;
    state.highlightId = a.id;
    invalidate('expiries', 'smile', 'feed');
  };

  const sev = document.createElement('span');
  sev.className = 'sev';
  sev.textContent = t(`sev${a.severity}`);

  const cells = [time, show, kindLabel(a.kind), sev, a.reason ?? ''];
  cells.forEach((c, i) => {
    const td = document.createElement('td');
    td.append(c);
    if (i === 4) td.className = 'reason'; // server text, shown as written
    tr.append(td);
  });
  return tr;
}

const dirty = new Set();
let frameRequested = false;
/** Mark panels for repaint; all repaint together in the next animation frame. */
function invalidate(...parts) {
  for (const p of parts) {
    if (p === 'all') Object.keys(renderers).forEach((k) => dirty.add(k));
    else dirty.add(p);
  }
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(() => {
      frameRequested = false;
      const todo = [...dirty];
      dirty.clear();
      for (const p of todo) renderers[p]();
    });
  }
}

// ---------------------------------------------------------------- wiring

function renderLangButtons() {
  for (const b of document.querySelectorAll('#lang button')) {
    b.setAttribute('aria-pressed', String(b.dataset.lang === lang()));
  }
}

function init() {
  applyStatic(document);
  renderLangButtons();
  for (const b of document.querySelectorAll('#lang button')) {
    b.onclick = () => {
      setLang(b.dataset.lang);
      renderLangButtons();
      invalidate('all');
    };
  }
  $('min-severity').onchange = (ev) => {
    state.minSeverity = Number(ev.target.value);
    invalidate('feed');
  };
  // Charts follow their CSS box (window resizes, font zoom).
  new ResizeObserver(() => invalidate('smile', 'gex', 'flow')).observe($('main'));

  invalidate('all');
  loadHistory();
  pollBots();
  const realtime = connectRealtime({
    negotiateUrl: api('negotiate'),
    group: SYMBOL,
    onMessage: onEnvelope,
    onState(name, info) {
      // Back after a drop: fetch what was published while we were away.
      if (name === 'live' && state.everLive) loadHistory();
      if (name === 'live') state.everLive = true;
      state.conn = { name, info };
      invalidate('conn');
    },
  });
  // A handle for the browser console and tests; nothing in the page depends on it.
  window.spyDashboard = { state, realtime, langs: LANGS };
}

init();
