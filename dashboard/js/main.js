// Dashboard entry point (loaded by index.html): wires the state (state.js), the data
// sources (data.js: REST history, bots, the realtime hub) and the painting (render.js).

import { applyStatic, LANGS, setLang } from './i18n.js';
import { connectLive, loadHistory, pollBots } from './data.js';
import { announce, invalidate, renderLangButtons } from './render.js';
import { applyEnvelope, FRESH_MS, state } from './state.js';

const $ = (id) => document.getElementById(id);

/** A live group message: update the state, highlight and announce new anomalies. */
function onEnvelope(env) {
  const { panels, added } = applyEnvelope(env);
  for (const a of added) {
    setTimeout(() => invalidate('feed'), FRESH_MS + 50); // the highlight ends
    announce(a);
  }
  invalidate(...panels);
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

  const repaintAll = () => invalidate('all');
  invalidate('all');
  loadHistory(repaintAll);
  pollBots(() => invalidate('bots'));
  const realtime = connectLive({
    onMessage: onEnvelope,
    onState(name, info) {
      // Back after a drop: fetch what was published while we were away.
      if (name === 'live' && state.everLive) loadHistory(repaintAll);
      if (name === 'live') state.everLive = true;
      state.conn = { name, info };
      invalidate('conn');
    },
  });
  // A handle for the browser console and tests; nothing in the page depends on it.
  window.spyDashboard = { state, realtime, langs: LANGS };
}

init();
