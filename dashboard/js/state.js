// Client-side state of the dashboard and the pure updates applied to it (loaded by
// main.js; read by render.js). Nothing here touches the DOM or the network: every
// update returns what changed, and main.js decides what to repaint.

export const SYMBOL = 'SPY';
export const MAX_ANOMALIES = 500; // kept in memory (smile markers, expiry badges)
export const MAX_ROWS = 200; // rendered in the feed
export const MAX_FLOW = 720; // flow samples kept for the chart
export const FRESH_MS = 5000; // new feed rows stay highlighted this long
export const SEV_RANK = { LOW: 0, MEDIUM: 1, HIGH: 2 };

export const state = {
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

// Compare parsed times: RFC 3339 text with and without fractions does not sort as text.
export const ms = (x) => Date.parse(x.ts);
export const byTime = (x, y) => ms(x) - ms(y);
const newer = (next, cur) => Number.isFinite(Date.parse(next?.ts)) && (!cur || ms(next) >= ms(cur));

/** Add an anomaly (history or live); false when it is a duplicate or another symbol's. */
export function addAnomaly(a, live, now = Date.now()) {
  if (!a?.id || state.anomalies.has(a.id) || (a.symbol && a.symbol !== SYMBOL)) return false;
  state.anomalies.set(a.id, a);
  if (state.anomalies.size > MAX_ANOMALIES) {
    const oldest = [...state.anomalies.values()].sort(byTime)[0];
    state.anomalies.delete(oldest.id);
  }
  if (live) state.fresh.set(a.id, now + FRESH_MS);
  state.selectedExpiry ??= a.contract?.expiry ?? null;
  return true;
}

export function setMarket(m) {
  if (!newer(m, state.market) || (m.symbol && m.symbol !== SYMBOL)) return;
  state.market = m;
  const nearest = (m.expiries ?? []).map((e) => e.expiry).sort()[0];
  if (nearest && (!state.expiryPicked || !knownExpiries().includes(state.selectedExpiry))) {
    state.selectedExpiry = nearest;
  }
}

export function setGex(g) {
  if (newer(g, state.gex) && (!g.symbol || g.symbol === SYMBOL)) state.gex = g;
}

export function addFlow(f) {
  if (!f?.ts || (f.symbol && f.symbol !== SYMBOL) || state.flow.some((x) => ms(x) === ms(f))) return;
  state.flow.push(f);
  state.flow.sort(byTime);
  if (state.flow.length > MAX_FLOW) state.flow.splice(0, state.flow.length - MAX_FLOW);
}

/**
 * Apply one realtime envelope {type, data}; data may also be a list.
 * Returns {panels: panels to repaint, added: anomalies that were new}.
 */
export function applyEnvelope(env) {
  const items = Array.isArray(env.data) ? env.data : [env.data];
  const panels = new Set();
  const added = [];
  for (const item of items) {
    switch (env.type) {
      case 'anomaly':
        if (addAnomaly(item, true)) {
          added.push(item);
          ['feed', 'smile', 'expiries'].forEach((p) => panels.add(p));
        }
        break;
      case 'market':
        setMarket(item);
        ['header', 'smile', 'expiries'].forEach((p) => panels.add(p));
        break;
      case 'gex':
        setGex(item);
        ['header', 'gex'].forEach((p) => panels.add(p));
        break;
      case 'flow':
        addFlow(item);
        panels.add('flow');
        break;
      default: // "signal" has no panel yet; unknown types come from newer backends
    }
  }
  return { panels: [...panels], added };
}

export function knownExpiries() {
  const set = new Set((state.market?.expiries ?? []).map((e) => e.expiry));
  for (const a of state.anomalies.values()) if (a.contract?.expiry) set.add(a.contract.expiry);
  return [...set].sort();
}

export const currentSpot = () => {
  const src = [state.market, state.gex].filter((x) => Number.isFinite(x?.spot));
  src.sort((x, y) => byTime(y, x));
  return src[0] ?? null;
};

/** The user picked an expiry (button or feed row): follow it from now on. */
export function pickExpiry(expiry, highlightId = state.highlightId) {
  state.selectedExpiry = expiry;
  state.expiryPicked = true;
  state.highlightId = highlightId;
}
