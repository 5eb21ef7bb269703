// Painting the dashboard (loaded by main.js): number and time formats, one renderer
// per panel reading state.js, and `invalidate()`, which batches repaints into the next
// animation frame. Text from the backend is only ever set as textContent.

import { drawFlow, drawGex, drawSmile } from './charts.js';
import { lang, t } from './i18n.js';
import { currentSpot, knownExpiries, MAX_ROWS, pickExpiry, SEV_RANK, state, byTime } from './state.js';

const $ = (id) => document.getElementById(id);

const formatters = new Map();
function nf(options) {
  const key = lang() + JSON.stringify(options);
  if (!formatters.has(key)) formatters.set(key, new Intl.NumberFormat(locale(), options));
  return formatters.get(key);
}
const locale = () => (lang() === 'es' ? 'es-ES' : 'en-US');
export const fmt = {
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
export const contractLabel = (c) => `${c.expiry} ${fmt.strike(c.strike)} ${c.right}`;
export const kindLabel = (kind) => {
  const label = t(`kind_${kind}`);
  return label === `kind_${kind}` ? kind : label; // a kind newer than this page: show it raw
};

export const renderers = {
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
          pickExpiry(exp);
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
    pickExpiry(a.contract.expiry, a.id);
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
export function invalidate(...parts) {
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

/** Announce a live HIGH anomaly to screen readers. */
export function announce(a) {
  if (a.severity !== 'HIGH') return;
  $('announcer').textContent = t('announceHigh', { contract: contractLabel(a.contract), kind: kindLabel(a.kind) });
}

export function renderLangButtons() {
  for (const b of document.querySelectorAll('#lang button')) {
    b.setAttribute('aria-pressed', String(b.dataset.lang === lang()));
  }
}
