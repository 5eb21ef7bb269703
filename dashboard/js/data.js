// Where the dashboard's data comes from (loaded by main.js): history from the backend's
// query API (REST), the bots list, and the live feed over the realtime hub. Results go
// into state.js; callers learn what changed through the callbacks they pass.
//
// The API base is this page's origin, or the <meta name="spy-api-base"> a deployment
// build writes into index.html. Never a URL parameter: a link must not be able to point
// a trading desk's screen at another server.

import { connectRealtime } from './realtime.js';
import { addAnomaly, addFlow, MAX_FLOW, MAX_ROWS, setGex, setMarket, state, SYMBOL } from './state.js';

const BOTS_POLL_MS = 15_000;
const HISTORY_RETRY_MS = 5000;

export const apiBase = (document.querySelector('meta[name="spy-api-base"]')?.content ?? '').replace(/\/$/, '');
export const api = (path) => `${apiBase}/api/v1/${path}`;

/** GET JSON; null on 404 (optional endpoints). Lists may come bare or as {items}. */
async function getJSON(path) {
  const res = await fetch(api(path), { headers: { Accept: 'application/json' }, cache: 'no-store' });
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`${path.split('?')[0]}: HTTP ${res.status}`);
  return res.json();
}
const asList = (body) => (Array.isArray(body) ? body : (body?.items ?? (body?.ts ? [body] : [])));

let historyRetry = null;
/** Load recent history into the state; `onLoaded()` after each attempt. */
export async function loadHistory(onLoaded) {
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
  if (failed) historyRetry = setTimeout(() => loadHistory(onLoaded), HISTORY_RETRY_MS);
  onLoaded();
}

/**
 * Bots panel: shown only when the backend has /api/v1/bots (a later issue adds it).
 * Its OpenAPI document says so; probing the endpoint itself would log a 404 in the
 * console of every desk whose backend lacks it. A 404 later hides the panel again.
 */
export async function pollBots(onChange) {
  try {
    if (state.bots === null) {
      const res = await fetch(`${apiBase}/openapi.json`, { cache: 'no-store' });
      const spec = res.ok ? await res.json() : null;
      if (!spec?.paths?.['/api/v1/bots']) return; // no bots endpoint: panel stays hidden
    }
    const body = await getJSON('bots');
    state.bots = body === null ? null : asList(body);
    onChange();
  } catch {
    // Transient (backend restarting): keep the last state and try again.
  }
  setTimeout(() => pollBots(onChange), BOTS_POLL_MS);
}

/** The live feed of this symbol's group: see realtime.js for the callbacks. */
export function connectLive({ onMessage, onState }) {
  return connectRealtime({ negotiateUrl: api('negotiate'), group: SYMBOL, onMessage, onState });
}
