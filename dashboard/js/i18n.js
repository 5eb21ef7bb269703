// EN/ES strings for every label on the dashboard, and the helpers that apply them.
// Static labels are elements with data-i18n="key" (text) or data-i18n-attr="attr:key,..."
// (attributes); everything drawn or built in JS calls t(). The choice is kept in
// localStorage. tests/dashboard reads STRINGS to check that no EN label survives in ES.

export const LANGS = ['en', 'es'];
const STORAGE_KEY = 'spy-dashboard.lang';

export const STRINGS = {
  en: {
    title: 'SPY options — live anomalies',
    appTitle: 'Options anomalies',
    skip: 'Skip to the anomaly feed',
    langGroup: 'Language',
    price: 'Price',
    priceUnknown: 'No price yet',
    connConnecting: 'Connecting…',
    connLive: 'Live',
    connReconnecting: 'Reconnecting in {s} s (attempt {n})',
    connDenied: 'Live data refused ({why}); retrying in {s} s',
    connOffline: 'Offline',
    historyError: 'History could not be loaded ({why}); live updates continue.',
    smileTitle: 'IV smile',
    expiries: 'Expiries',
    expiryAnomalies: '{expiry}: {n} anomalies',
    smileX: 'Log-moneyness ln(K/F)',
    smileY: 'Implied volatility',
    quotes: 'Quotes',
    fitted: 'Fitted smile',
    anomaly: 'Anomaly',
    smileEmpty: 'No smile data yet',
    smileAria: 'IV smile for {expiry}: {n} quotes, {m} anomalies marked',
    feedTitle: 'Anomaly feed',
    feedFilter: 'Show',
    sevAll: 'All severities',
    sevMedium: 'Medium and high',
    sevHigh: 'High only',
    colTime: 'Time',
    colContract: 'Contract',
    colKind: 'Kind',
    colSeverity: 'Severity',
    colReason: 'Reason',
    feedEmpty: 'No anomalies yet',
    feedShowOnSmile: 'Show {contract} on the smile',
    sevLOW: 'Low',
    sevMEDIUM: 'Medium',
    sevHIGH: 'High',
    kind_iv_residual: 'IV residual',
    kind_vol_oi: 'Volume vs open interest',
    kind_volume_z: 'Volume spike',
    kind_parity: 'Put-call parity break',
    kind_early_exercise: 'Early-exercise bound break',
    kind_call_spread: 'Call-spread arbitrage',
    kind_butterfly: 'Butterfly arbitrage',
    kind_calendar: 'Calendar arbitrage',
    kind_spread_blowout: 'Spread blow-out',
    gexTitle: 'Gamma exposure by strike',
    netGex: 'Net GEX',
    flip: 'Gamma flip',
    strike: 'Strike',
    gexY: 'Dealer gamma exposure (USD)',
    gexEmpty: 'No gamma exposure data yet',
    gexAria: 'Gamma exposure over {n} strikes, net {net}, flip at {flip}',
    flowTitle: 'Premium flow',
    callPremium: 'Call premium',
    putPremium: 'Put premium',
    netPremium: 'Net signed premium',
    netPremiumHelp:
      'Bought at the ask minus sold at the bid: calls bought and puts sold count +, calls sold and puts bought count −. Not call premium minus put premium (those count both sides).',
    premiumY: 'Premium (USD)',
    pcRatio: 'Put/call volume',
    flowEmpty: 'No premium flow yet',
    flowAria: 'Premium flow: calls {calls}, puts {puts}, net signed {net}',
    botsTitle: 'Trading bots',
    botName: 'Bot',
    botMode: 'Mode',
    botArmed: 'Armed',
    botReady: 'Status',
    yes: 'Yes',
    no: 'No',
    updated: 'Updated {time}',
    footerNote: 'Times are in your local time zone. Reasons are written by the detector.',
    announceHigh: 'High severity anomaly: {contract}, {kind}',
  },
  es: {
    title: 'Opciones SPY — anomalías en vivo',
    appTitle: 'Anomalías de opciones',
    skip: 'Ir a la lista de anomalías',
    langGroup: 'Idioma',
    price: 'Precio',
    priceUnknown: 'Sin precio todavía',
    connConnecting: 'Conectando…',
    connLive: 'En vivo',
    connReconnecting: 'Reconectando en {s} s (intento {n})',
    connDenied: 'Datos en vivo rechazados ({why}); reintento en {s} s',
    connOffline: 'Sin conexión',
    historyError: 'No se pudo cargar el historial ({why}); siguen las actualizaciones en vivo.',
    smileTitle: 'Sonrisa de volatilidad',
    expiries: 'Vencimientos',
    expiryAnomalies: '{expiry}: {n} anomalías',
    smileX: 'Log-moneyness ln(K/F)',
    smileY: 'Volatilidad implícita',
    quotes: 'Cotizaciones',
    fitted: 'Sonrisa ajustada',
    anomaly: 'Anomalía',
    smileEmpty: 'Aún no hay datos de la sonrisa',
    smileAria: 'Sonrisa de VI para {expiry}: {n} cotizaciones, {m} anomalías marcadas',
    feedTitle: 'Anomalías',
    feedFilter: 'Mostrar',
    sevAll: 'Todas las severidades',
    sevMedium: 'Media y alta',
    sevHigh: 'Solo alta',
    colTime: 'Hora',
    colContract: 'Contrato',
    colKind: 'Tipo',
    colSeverity: 'Severidad',
    colReason: 'Motivo',
    feedEmpty: 'Sin anomalías por ahora',
    feedShowOnSmile: 'Ver {contract} en la sonrisa',
    sevLOW: 'Baja',
    sevMEDIUM: 'Media',
    sevHIGH: 'Alta',
    kind_iv_residual: 'Residuo de VI',
    kind_vol_oi: 'Volumen frente a interés abierto',
    kind_volume_z: 'Pico de volumen',
    kind_parity: 'Ruptura de paridad put-call',
    kind_early_exercise: 'Ruptura del límite de ejercicio anticipado',
    kind_call_spread: 'Arbitraje de call spread',
    kind_butterfly: 'Arbitraje de mariposa',
    kind_calendar: 'Arbitraje de calendario',
    kind_spread_blowout: 'Diferencial disparado',
    gexTitle: 'Exposición gamma por precio de ejercicio',
    netGex: 'GEX neta',
    flip: 'Cambio de gamma',
    strike: 'Precio de ejercicio',
    gexY: 'Exposición gamma de los dealers (USD)',
    gexEmpty: 'Aún no hay datos de exposición gamma',
    gexAria: 'Exposición gamma en {n} precios de ejercicio, neta {net}, cambio en {flip}',
    flowTitle: 'Flujo de primas',
    callPremium: 'Prima de calls',
    putPremium: 'Prima de puts',
    netPremium: 'Prima neta con signo',
    netPremiumHelp:
      'Comprado al ask menos vendido al bid: calls compradas y puts vendidas suman, calls vendidas y puts compradas restan. No es la prima de calls menos la de puts (esas cuentan ambos lados).',
    premiumY: 'Prima (USD)',
    pcRatio: 'Volumen put/call',
    flowEmpty: 'Aún no hay flujo de primas',
    flowAria: 'Flujo de primas: calls {calls}, puts {puts}, neta con signo {net}',
    botsTitle: 'Bots de trading',
    botName: 'Bot',
    botMode: 'Modo',
    botArmed: 'Armado',
    botReady: 'Estado',
    yes: 'Sí',
    no: 'No',
    updated: 'Actualizado {time}',
    footerNote: 'Horas en su zona horaria local. Los motivos los redacta el detector.',
    announceHigh: 'Anomalía de severidad alta: {contract}, {kind}',
  },
};

let current = initialLang();

function initialLang() {
  let saved = null;
  try {
    saved = localStorage.getItem(STORAGE_KEY);
  } catch {
    // Storage can be disabled (privacy mode); fall back to the browser language.
  }
  if (LANGS.includes(saved)) return saved;
  return (navigator.language || 'en').toLowerCase().startsWith('es') ? 'es' : 'en';
}

export function lang() {
  return current;
}

/** Translate `key`, filling {name} placeholders from `vars`. Unknown keys show the key. */
export function t(key, vars = {}) {
  const s = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
}

/** Switch language, remember it, and re-label the static DOM. */
export function setLang(next) {
  if (!LANGS.includes(next)) return;
  current = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // Not remembered, but the page still switches.
  }
  applyStatic(document);
}

/** Apply data-i18n / data-i18n-attr labels under `root`. */
export function applyStatic(root) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(',')) {
      const [attr, key] = pair.split(':');
      el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}
