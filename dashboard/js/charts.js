// Canvas charts: IV smile, GEX by strike, premium flow. Pure drawing: each function
// takes a canvas and plain data (already translated labels and formatters) and
// repaints it whole; main.js decides when. Sizes follow the CSS box and the device
// pixel ratio so lines stay crisp on desk monitors.

export const COLORS = {
  bg: '#0d1117',
  grid: '#263041',
  axis: '#8b98a9',
  text: '#c9d4e3',
  quotes: '#7aa2f7',
  fit: '#e0e6f0',
  up: '#3fb950',
  down: '#f85149',
  flip: '#d29922',
  spot: '#58a6ff',
  sev: { LOW: '#e3c65a', MEDIUM: '#ff9f43', HIGH: '#ff4d6d' },
};
const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const PAD = { left: 52, right: 16, top: 28, bottom: 40 };

/** fillText that also records the string on canvas.drawnText (read by tests/dashboard to
 * check that every label drawn on a chart follows the language toggle). */
function text(ctx, s, x, y) {
  ctx.fillText(s, x, y);
  ctx.canvas.drawnText.push(s);
}

/** Resize the backing store to the CSS box * DPR, clear, return a CSS-pixel context. */
function prepare(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, canvas.clientWidth);
  const h = Math.max(1, canvas.clientHeight);
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  canvas.drawnText = [];
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = COLORS.bg;
  ctx.fillRect(0, 0, w, h);
  ctx.font = FONT;
  return { ctx, w, h };
}

function empty(canvas, message) {
  const { ctx, w, h } = prepare(canvas);
  ctx.fillStyle = COLORS.axis;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  text(ctx, message, w / 2, h / 2);
}

function extent(values, padFraction = 0.06) {
  const finite = values.filter(Number.isFinite);
  if (!finite.length) return [0, 1];
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (lo === hi) {
    const d = Math.abs(lo) * 0.05 || 1;
    lo -= d;
    hi += d;
  }
  const pad = (hi - lo) * padFraction;
  return [lo - pad, hi + pad];
}

/** About `count` round tick values covering [lo, hi] (1/2/5 x 10^n steps). */
function ticks(lo, hi, count = 5) {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out = [];
  // Multiply rather than accumulate, and turn -0 into 0, so labels never read "-0".
  for (let i = Math.ceil(lo / step); i * step <= hi + step * 1e-9; i++) out.push(i * step || 0);
  return out;
}

/** Frame with grid, tick labels and axis titles; returns the data->pixel mappings and
 * the left edge of the plot (it grows with the widest y label: "-100 M US$" in ES). */
function frame(ctx, w, h, xDomain, yDomain, fmtX, fmtY, xTitle, yTitle) {
  const [x0, x1] = xDomain;
  const [y0, y1] = yDomain;
  const yTicks = ticks(y0, y1).map((y) => [y, fmtY(y)]);
  const left = Math.max(PAD.left, ...yTicks.map(([, label]) => ctx.measureText(label).width + 12));
  const px = (x) => left + ((x - x0) / (x1 - x0)) * (w - left - PAD.right);
  const py = (y) => h - PAD.bottom - ((y - y0) / (y1 - y0)) * (h - PAD.top - PAD.bottom);
  ctx.strokeStyle = COLORS.grid;
  ctx.fillStyle = COLORS.axis;
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const [y, label] of yTicks) {
    ctx.beginPath();
    ctx.moveTo(left, py(y));
    ctx.lineTo(w - PAD.right, py(y));
    ctx.stroke();
    text(ctx, label, left - 6, py(y));
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const x of ticks(x0, x1, Math.max(2, Math.floor((w - left) / 90)))) {
    const label = fmtX(x);
    // Keep edge labels inside the canvas instead of clipping them.
    const half = ctx.measureText(label).width / 2;
    text(ctx, label, Math.min(w - half - 2, Math.max(half + 2, px(x))), h - PAD.bottom + 6);
  }
  ctx.fillStyle = COLORS.text;
  text(ctx, xTitle, left + (w - left - PAD.right) / 2, h - 16);
  ctx.textAlign = 'left';
  text(ctx, yTitle, left, 6);
  return { px, py, left };
}

/** Dashed vertical line with its label beside it, to the `side` ('left'|'right'). */
function verticalMarker(ctx, x, h, color, label, side) {
  ctx.save();
  ctx.strokeStyle = color;
  ctx.setLineDash([5, 4]);
  ctx.beginPath();
  ctx.moveTo(x, PAD.top);
  ctx.lineTo(x, h - PAD.bottom);
  ctx.stroke();
  ctx.fillStyle = color;
  ctx.textAlign = side === 'left' ? 'right' : 'left';
  ctx.textBaseline = 'top';
  text(ctx, label, x + (side === 'left' ? -4 : 4), PAD.top);
  ctx.restore();
}

/** Linear interpolation of the fitted curve at k (for anomalies without an iv). */
function interp(xs, ys, x) {
  for (let i = 1; i < xs.length; i++) {
    if (x <= xs[i]) {
      const f = (x - xs[i - 1]) / (xs[i] - xs[i - 1] || 1);
      return ys[i - 1] + f * (ys[i] - ys[i - 1]);
    }
  }
  return ys.at(-1);
}

/**
 * Smile of one expiry: quotes as dots, the fit as a line, anomalies as rings coloured by
 * severity (the highlighted one larger). anomalies: [{id, k, iv, severity}] with k and
 * iv possibly null (iv null -> placed on the fitted curve).
 */
export function drawSmile(canvas, { points, fit, anomalies, highlightId, labels, fmt }) {
  const pk = points?.k ?? [];
  const fk = fit?.k ?? [];
  const placed = anomalies.filter((a) => Number.isFinite(a.k));
  if (!pk.length && !fk.length && !placed.length) return empty(canvas, labels.empty);
  const { ctx, w, h } = prepare(canvas);
  const anomalyIv = (a) => (Number.isFinite(a.iv) ? a.iv : fk.length ? interp(fk, fit.iv, a.k) : NaN);
  const xDomain = extent([...pk, ...fk, ...placed.map((a) => a.k)]);
  const yDomain = extent([...(points?.iv ?? []), ...(fit?.iv ?? []), ...placed.map(anomalyIv)]);
  const { px, py } = frame(ctx, w, h, xDomain, yDomain, fmt.k, fmt.iv, labels.x, labels.y);

  ctx.fillStyle = COLORS.quotes;
  pk.forEach((k, i) => {
    ctx.beginPath();
    ctx.arc(px(k), py(points.iv[i]), 2.5, 0, 2 * Math.PI);
    ctx.fill();
  });
  if (fk.length) {
    ctx.strokeStyle = COLORS.fit;
    ctx.lineWidth = 2;
    ctx.beginPath();
    fk.forEach((k, i) => (i ? ctx.lineTo(px(k), py(fit.iv[i])) : ctx.moveTo(px(k), py(fit.iv[i]))));
    ctx.stroke();
  }
  for (const a of placed) {
    const y = anomalyIv(a);
    if (!Number.isFinite(y)) continue;
    const big = a.id === highlightId;
    ctx.strokeStyle = COLORS.sev[a.severity] ?? COLORS.sev.LOW;
    ctx.lineWidth = big ? 3 : 2;
    ctx.beginPath();
    ctx.arc(px(a.k), py(y), big ? 10 : 7, 0, 2 * Math.PI);
    ctx.stroke();
  }
  legend(ctx, w, [
    [COLORS.quotes, labels.quotes, 'dot'],
    [COLORS.fit, labels.fit, 'line'],
    [COLORS.sev.HIGH, labels.anomaly, 'ring'],
  ]);
}

function legend(ctx, w, entries) {
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  let x = w - PAD.right;
  for (const [color, label, shape] of [...entries].reverse()) {
    x -= ctx.measureText(label).width + 26;
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    if (shape === 'line') {
      ctx.moveTo(x, 10);
      ctx.lineTo(x + 14, 10);
      ctx.stroke();
    } else {
      ctx.arc(x + 7, 10, shape === 'ring' ? 5 : 3, 0, 2 * Math.PI);
      shape === 'ring' ? ctx.stroke() : ctx.fill();
    }
    ctx.fillStyle = COLORS.text;
    text(ctx, label, x + 18, 10);
  }
}

/** GEX bars by strike (green long gamma, red short), dashed flip and spot lines. */
export function drawGex(canvas, { strikes, gex, flip, spot, labels, fmt }) {
  if (!strikes?.length) return empty(canvas, labels.empty);
  const { ctx, w, h } = prepare(canvas);
  const xDomain = extent([...strikes, flip, spot], 0.03);
  const yDomain = extent([0, ...gex]);
  const { px, py, left } = frame(ctx, w, h, xDomain, yDomain, fmt.strike, fmt.money, labels.x, labels.y);
  const step = Math.min(...strikes.slice(1).map((s, i) => s - strikes[i]).filter((d) => d > 0));
  const barW = Math.max(1, Math.min(24, (Number.isFinite(step) ? px(step) - px(0) : 8) * 0.7));
  strikes.forEach((s, i) => {
    ctx.fillStyle = gex[i] >= 0 ? COLORS.up : COLORS.down;
    const y = py(gex[i]);
    const zero = py(0);
    ctx.fillRect(px(s) - barW / 2, Math.min(y, zero), barW, Math.abs(zero - y));
  });
  ctx.strokeStyle = COLORS.axis;
  ctx.beginPath();
  ctx.moveTo(left, py(0));
  ctx.lineTo(w - PAD.right, py(0));
  ctx.stroke();
  // Flip and spot are usually close: label the left line on its left, the other on its right.
  const flipLeft = !(flip > spot);
  if (Number.isFinite(flip)) {
    verticalMarker(ctx, px(flip), h, COLORS.flip, `${labels.flip} ${fmt.strike(flip)}`, flipLeft ? 'left' : 'right');
  }
  if (Number.isFinite(spot)) {
    verticalMarker(ctx, px(spot), h, COLORS.spot, `SPY ${fmt.price(spot)}`, flipLeft ? 'right' : 'left');
  }
}

/** Call and put premium over time (two lines; dots when there is a single sample). */
export function drawFlow(canvas, { series, labels, fmt }) {
  if (!series?.length) return empty(canvas, labels.empty);
  const { ctx, w, h } = prepare(canvas);
  const ts = series.map((f) => Date.parse(f.ts));
  const xDomain = extent(ts, 0.02);
  const yDomain = extent([0, ...series.flatMap((f) => [f.call_premium, f.put_premium])]);
  const { px, py } = frame(ctx, w, h, xDomain, yDomain, fmt.time, fmt.money, labels.x, labels.y);
  for (const [key, color] of [
    ['call_premium', COLORS.up],
    ['put_premium', COLORS.down],
  ]) {
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    series.forEach((f, i) => (i ? ctx.lineTo(px(ts[i]), py(f[key])) : ctx.moveTo(px(ts[i]), py(f[key]))));
    ctx.stroke();
    const last = series.length - 1;
    ctx.beginPath();
    ctx.arc(px(ts[last]), py(series[last][key]), 3.5, 0, 2 * Math.PI);
    ctx.fill();
  }
  legend(ctx, w, [
    [COLORS.up, labels.calls, 'line'],
    [COLORS.down, labels.puts, 'line'],
  ]);
}
