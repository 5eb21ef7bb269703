// Realtime client for Azure Web PubSub's `json.webpubsub.azure.v1` subprotocol. The
// backend's local hub speaks the same protocol, so this code serves dev and prod alike:
//   GET <negotiate> -> {url}; WebSocket(url, subprotocol); send joinGroup with an ackId;
//   receive {type:"message", group, dataType, data}. Any close -> reconnect with
//   exponential backoff and full jitter, negotiating again (access tokens expire).

export const SUBPROTOCOL = 'json.webpubsub.azure.v1';

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;

/**
 * Keep one live connection to `group`. Callbacks:
 *   onMessage(envelope)  - the group message's data: {type: "anomaly"|..., data: {...}}
 *   onState(state, info) - "connecting" | "live" | "reconnecting" {delayMs, attempt}
 *                          | "denied" {why, delayMs, attempt}: the join was refused;
 *                            retried with the same backoff (roles may be fixed)
 * Returns {close(), reconnectNow(), socket()}.
 */
export function connectRealtime({ negotiateUrl, group, onMessage, onState }) {
  let ws = null;
  let attempt = 0; // consecutive failures; reset once a join is acknowledged
  let timer = null;
  let closed = false;
  let nextAckId = 1;
  let joinAckId = 0;
  let refusal = null; // why the last join was refused, shown until the next attempt
  let negotiating = false; // between open() and the socket's creation

  async function open() {
    timer = null;
    refusal = null;
    onState('connecting', { attempt });
    let url;
    negotiating = true;
    try {
      const res = await fetch(negotiateUrl, { cache: 'no-store' });
      if (!res.ok) throw new Error(`negotiate HTTP ${res.status}`);
      url = (await res.json()).url;
      if (!url) throw new Error('negotiate returned no url');
    } catch {
      // Backend unreachable or refusing: the state pill shows it; retry later.
      negotiating = false;
      scheduleRetry();
      return;
    }
    negotiating = false;
    if (closed) return;
    const sock = new WebSocket(url, SUBPROTOCOL);
    ws = sock;
    sock.onopen = () => {
      joinAckId = nextAckId++;
      sock.send(JSON.stringify({ type: 'joinGroup', group, ackId: joinAckId }));
    };
    sock.onmessage = (ev) => handleFrame(sock, ev.data);
    // onerror is always followed by onclose; reconnect from one place only.
    sock.onclose = () => {
      if (ws === sock) ws = null;
      if (!closed) scheduleRetry();
    };
  }

  function handleFrame(sock, raw) {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return; // not JSON: ignore rather than break the stream
    }
    if (msg.type === 'ack' && msg.ackId === joinAckId) {
      // "Duplicate" means the service already processed this ackId: still joined.
      if (msg.success || msg.error?.name === 'Duplicate') {
        attempt = 0;
        onState('live', {});
      } else {
        refusal = msg.error?.message || msg.error?.name || 'joinGroup';
        sock.close(); // onclose retries with backoff, reporting the refusal
      }
    } else if (msg.type === 'message' && msg.from === 'group' && msg.group === group) {
      // dataType json carries an object; text carries a JSON string.
      let data = msg.data;
      if (typeof data === 'string') {
        try {
          data = JSON.parse(data);
        } catch {
          return;
        }
      }
      if (data && typeof data === 'object') onMessage(data);
    }
    // system "connected"/"disconnected" frames need no action: onclose handles drops.
  }

  function scheduleRetry() {
    if (closed || timer) return;
    // Full jitter spreads a desk's worth of dashboards after a backend restart.
    const cap = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
    const delayMs = Math.round(cap / 2 + (Math.random() * cap) / 2);
    attempt += 1;
    onState(refusal ? 'denied' : 'reconnecting', { delayMs, attempt, why: refusal });
    timer = setTimeout(open, delayMs);
  }

  function reconnectNow() {
    if (closed || ws || negotiating) return; // already on its way
    clearTimeout(timer);
    timer = null;
    open();
  }

  // Coming back online is a better signal than any timer.
  window.addEventListener('online', reconnectNow);
  open();

  return {
    close() {
      closed = true;
      clearTimeout(timer);
      window.removeEventListener('online', reconnectNow);
      ws?.close();
    },
    reconnectNow,
    socket: () => ws,
  };
}
