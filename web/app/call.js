// Calls in a room (issue 6, docs/calls.md): a peer-to-peer mesh, one
// RTCPeerConnection per other participant, negotiated with the "perfect
// negotiation" pattern (https://w3c.github.io/webrtc-pc/#perfect-negotiation-example):
// the server tells each side whether it is polite towards a peer (the
// earlier joiner is polite); an impolite peer ignores a colliding offer, a
// polite one rolls back and answers. Signals travel as rpc call.signal and
// come back as {"push":"call"} frames.
//
// Media: camera and microphone (mute and camera off disable the tracks, so
// no renegotiation), screen sharing as an extra video track, a tile per
// participant, and a connection-quality hint from getStats.
//
// Screen share: the shared screen is a video track of its own, in its own
// MediaStream. Browsers let no page choose a stream's or track's id, so the
// descriptions we signal name them "screen-<id>" in their msid lines
// (markScreen): the SFU serves a stream whose id contains "screen" before
// cameras, and the receiving side tells a screen from a camera by the msid
// of the m-section it came in (screenMsid), and shows it as a large tile of
// its own.
//
// Quality menu: on the SFU each remote tile has a select (auto, high, mid,
// low, off) that caps the layer we receive of that participant's camera,
// through rpc call.quality; a mesh has no layers, and hides it.
//
// SFU mode (docs/calls.md, "Mesh limit and the SFU"): when the join result or
// a "mode" push says "sfu", the mesh connections close and one connection to
// the pseudo-participant "sfu" carries everything: our camera as simulcast
// (rids q, h, f) and microphone out, every other participant's tracks in,
// each in a MediaStream named by its participant id. We offer first and are
// polite towards "sfu". A "mode" push back to "mesh" rebuilds the mesh.
// The SFU drives ICE restarts on that connection: the app asks for one and
// answers the SFU's restart offer (shouldAskSFURestart).
import { h, replace, announce } from './dom.js';
import { api } from './api.js';

const STATS_MS = 1000;
const RING_MS = 45_000; // an unanswered ring gives up
const SPEAKING_LEVEL = 0.02; // audio level (0–1, RMS over the last stats interval) above which a mesh peer counts as speaking
// ICE "disconnected" this long restarts ICE. Browsers stay "disconnected"
// (rather than "failed", which takes them ~30 s) through loss, a changed
// network or a stalled peer; a few seconds of it is no blip any more.
export const ICE_DISCONNECTED_MS = 4000;
const ICE_RETRY_MAX_MS = 30_000; // a restart that did not help is tried again, backing off to this
const MAX_HELD_CANDIDATES = 64; // candidates held per peer until its description comes (#onSignal)

/**
 * Waits before rejoining a call that ended under us because the node that
 * ran it died (a `left` push about ourselves with reason "node gone",
 * docs/calls.md "Calls in a cluster"): the first join after that starts the
 * call again on a live node, so the user sees a short interruption instead
 * of a dead call. A few tries, with backoff (the other nodes learn of the
 * death within the heartbeat timeout, 4 s), and jitter so that everybody in
 * the call does not land on the new node in the same instant.
 */
export const REJOIN_DELAYS_MS = [1000, 3000, 8000];

/**
 * How long to wait before rejoin attempt number attempt (0-based) after the
 * server took us out of a call for reason, or null: do not rejoin. Only
 * "node gone" rejoins; a kick, a leave of the room or a join elsewhere
 * ("replaced") must not be undone. random() gives the jitter (±25%).
 */
export function rejoinDelay(reason, attempt, random = Math.random) {
  if (reason !== 'node gone' || attempt < 0 || attempt >= REJOIN_DELAYS_MS.length) return null;
  return Math.round(REJOIN_DELAYS_MS[attempt] * (0.75 + random() / 2));
}

/**
 * How long the polite side of a new mesh connection waits for the other
 * side's first offer before it offers itself (mayOfferFirst). The offer is
 * normally there within a signaling round trip; this only covers one that
 * was lost, and is long because offering early brings back the collision
 * that waiting avoids.
 */
export const FIRST_OFFER_WAIT_MS = 15_000;

/**
 * Whether a mesh connection may send an offer now: the impolite side (the
 * later joiner) always; the polite side once the other's first offer has
 * come (it has a remote description), or once it waited FIRST_OFFER_WAIT_MS
 * for it in vain. Offers from both sides at once ("glare") make the polite
 * side roll its own back, after which Chromium may gather no ICE candidate
 * at all for its answer.
 */
export function mayOfferFirst(polite, hasRemoteDescription, waited) {
  return !polite || hasRemoteDescription || waited;
}

/**
 * Restarts ICE on pc: the next offer (negotiationneeded) carries new ICE
 * credentials. An offer of ours still unanswered by now (lost, or ignored
 * by the other side in a collision) is rolled back first: restartIce() alone
 * waits for the signaling state to be stable, which that offer would keep
 * from happening for good.
 */
export async function restartIce(pc) {
  if (pc.signalingState === 'have-local-offer') {
    try { await pc.setLocalDescription({ type: 'rollback' }); } catch { /* an answer came meanwhile */ }
  }
  pc.restartIce();
}

/**
 * Watches pc's ICE connection state and calls restart() (which calls
 * pc.restartIce() and signals) when it turns "failed", or stays
 * "disconnected" for graceMs. While the connection stays down it restarts
 * again after twice the previous wait (up to ICE_RETRY_MAX_MS): the first
 * restart's offer may be lost, or the network may come back later. Going
 * back to "connected" or "completed" resets the wait. Returns a function
 * that stops watching. Timers are injectable (tests).
 */
export function watchIce(pc, restart, { graceMs = ICE_DISCONNECTED_MS, setTimer = setTimeout, clearTimer = clearTimeout } = {}) {
  let timer = 0;
  let wait = graceMs;
  const disarm = () => { if (timer) clearTimer(timer); timer = 0; };
  const arm = (ms) => {
    disarm();
    timer = setTimer(() => {
      timer = 0;
      const st = pc.iceConnectionState;
      if (st !== 'disconnected' && st !== 'failed' && st !== 'checking') return;
      restart(st);
      wait = Math.min(wait * 2, ICE_RETRY_MAX_MS);
      arm(wait);
    }, ms);
  };
  const onChange = () => {
    const st = pc.iceConnectionState;
    if (st === 'connected' || st === 'completed') { wait = graceMs; disarm(); } else if (st === 'closed') {
      disarm();
    } else if (st === 'failed') {
      if (wait === graceMs) { // not restarted since it was last up: now
        restart(st);
        wait = Math.min(wait * 2, ICE_RETRY_MAX_MS);
      }
      arm(wait);
    } else if (st === 'disconnected' && !timer) {
      arm(wait);
    }
  };
  pc.addEventListener('iceconnectionstatechange', onChange);
  return () => { disarm(); pc.removeEventListener('iceconnectionstatechange', onChange); };
}

/**
 * The longest the SFU waits between two ICE-restart offers of its own while
 * a participant's connection to it stays down (docs/calls.md "ICE restart":
 * 10, 20, 40, then every 80 s), with room for a slow signaling path.
 */
export const SFU_RESTART_QUIET_MS = 90_000;

/**
 * Whether the app should ask the SFU for an ICE restart (a bare
 * `restart: true` signal to "sfu") now that watchIce found its connection
 * to the SFU down. In SFU mode the server drives restarts: it makes the
 * restart offer and, while the connection stays down, makes another after
 * 10, 20, 40 and 80 s on its own. Each restart replaces the one before with
 * new ICE credentials, and the connectivity checks start over; an app and
 * an SFU restarting on their own timers (4 s and 5 s of "disconnected")
 * over slow signaling kept replacing each other's restart before either
 * could connect. So the app asks at most once per outage, and not at all
 * when the SFU's restart offer came first; it asks again only when neither
 * side has restarted for SFU_RESTART_QUIET_MS (say the SFU's side sees no
 * outage). askedAt and offeredAt: when, in this outage, the app last asked
 * and the SFU's last restart offer came (null: not yet); now on the same
 * clock.
 */
export function shouldAskSFURestart(askedAt, offeredAt, now) {
  const last = Math.max(askedAt ?? -Infinity, offeredAt ?? -Infinity);
  return now - last >= SFU_RESTART_QUIET_MS;
}

/**
 * When the TURN credentials in iceServers stop opening new relays (ms since
 * the epoch): the earliest expiry in their usernames, "<unix expiry>:<user>"
 * (docs/calls.md, "Credentials"); Infinity when none carries one (no TURN).
 */
export function iceServersExpiry(iceServers) {
  let at = Infinity;
  for (const s of iceServers ?? []) {
    const m = /^(\d+):/.exec(typeof s?.username === 'string' ? s.username : '');
    if (m) at = Math.min(at, Number(m[1]) * 1000);
  }
  return at;
}

/**
 * TURN credentials this close to their expiry count as stale before an ICE
 * restart: the relays the restart may need are allocated after it begins.
 */
export const ICE_REFRESH_MARGIN_MS = 60_000;

/**
 * The simulcast encodings for a camera of the given height, lowest first
 * (rids q, h, f: the SFU orders layers by rid). Chrome sends only as many
 * layers as its table allows for the resolution, and keeps the lowest ones:
 * asked for three layers from a 360p camera it sends a quarter and a half
 * and never the full picture, and from a 180p camera only the 80×45
 * quarter. So the top layer is always the camera's own resolution, and each
 * lower one halves it, down to about 90 lines; a small camera sends one
 * stream without simulcast (undefined).
 */
export function simulcastLayers(height) {
  if (height >= 540) {
    return [
      { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
      { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
      { rid: 'f', maxBitrate: 1_200_000 },
    ];
  }
  if (height >= 270) {
    return [
      { rid: 'q', scaleResolutionDownBy: 2, maxBitrate: 200_000 },
      { rid: 'h', maxBitrate: 700_000 },
    ];
  }
  return undefined;
}

/**
 * Renames the screen share's stream and track in a session description we
 * are about to signal: every msid "<stream> <track>" of the screen stream
 * becomes "screen-<stream> screen-<track>", in a=msid and in a=ssrc lines
 * alike (the track part is whatever the browser wrote: Chromium's is not
 * always the track's id). Both parts: a mesh peer sees the stream id, an SFU
 * subscriber only the track id ("<publisher>/<track>"). Only the copy that
 * travels is renamed; our own peer connection keeps its description, and
 * msid names nothing on the wire (RTP carries none).
 */
export function markScreen(sdp, stream) {
  if (!stream || !sdp) return sdp;
  const id = stream.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return sdp.replace(new RegExp(`msid:${id} (\\S+)`, 'g'), (_, track) => `msid:screen-${stream.id} screen-${track}`);
}

/** The msid ("<stream> <track>") of the m-section with the given mid in sdp, or ''. */
export function msidOf(sdp, mid) {
  if (!sdp || mid === null || mid === undefined) return '';
  for (const section of sdp.split(/\r?\n(?=m=)/)) {
    const lines = section.split(/\r?\n/);
    if (!lines[0].startsWith('m=')) continue; // the session part
    if (!lines.some((l) => l === `a=mid:${mid}`)) continue;
    const msid = lines.find((l) => l.startsWith('a=msid:'));
    return msid ? msid.slice('a=msid:'.length).trim() : '';
  }
  return '';
}

/** Whether the remote track of the m-section with mid is a screen share (its msid names "screen"). */
export function screenMsid(sdp, mid) {
  return /screen/i.test(msidOf(sdp, mid));
}

/** The layers call.quality takes (docs/calls.md), in the order the menu lists them. */
export const QUALITY_LAYERS = ['auto', 'high', 'mid', 'low', 'off'];

export class CallPanel {
  #owners;

  constructor({ client, me, rpc, slot, panel }) {
    Object.assign(this, { client, me, rpc, slot, panel });
    this.room = null; // the open chat room (RoomModel)
    this.call = null; // {roomId, name, myId, ice, peers: Map}
    this.local = null; // MediaStream of camera + mic
    this.screen = null; // MediaStream of the screen share
    this.state = { muted: false, camera: true, screen: false };
    this.joining = false;
    this.rejoining = null; // {roomId, name, myId, attempt, timer} while waiting to rejoin (rejoinDelay)
    this.early = null; // {roomId, pushes} while a call.join is out: the pushes that came before its reply
    this.button = h('button', { type: 'button', class: 'call-button', onclick: () => this.toggle() }, 'Join call');
    // "Call in progress" for a member of the open room who is not in its call.
    this.roomStatus = h('span', { class: 'call-status', role: 'status' });
    // Watching a room's WHIP-fed live stream over WHEP (docs/calls.md, "WHIP and WHEP").
    this.watchButton = h('button', { type: 'button', class: 'watch-button', onclick: () => this.#toggleWatch() }, 'Watch stream');
    this.watching = null; // {roomId, pc, location, token, el}
    this.slot.append(this.roomStatus, this.button, this.watchButton);
    this.roomCall = null; // the open room's call state ({type:"call",active,participants,mode})
    this.onRoomCall = (e) => this.#setRoomCall(this.room, e.detail);
    this.ringing = null; // {roomId, by, el, timer, beep}
    this.statsTimer = 0;
    // Who shows each received track: {peer, release()} (#onTrack).
    this.#owners = new WeakMap();
    // A room opened before the connection was up asks again once it is.
    this.client?.on?.('state', (st) => { if ((typeof st === 'string' ? st : st?.state) === 'connected') this.#fetchRoomCall(); });
  }

  /** The open chat room changed (null: none). The call, if any, goes on. */
  setRoom(room) {
    this.room?.removeEventListener('call', this.onRoomCall);
    this.room = room;
    this.roomCall = null;
    room?.addEventListener('call', this.onRoomCall);
    this.#renderButton();
    this.#fetchRoomCall();
  }

  /** Asks for the open room's call state (docs/calls.md, "Call state outside the call"). */
  #fetchRoomCall() {
    const room = this.room;
    if (!room) return;
    this.rpc('call.status', { room: room.id }).then((st) => this.#setRoomCall(room, st), () => { /* offline: the next change or reconnect tells */ });
  }

  #setRoomCall(room, st) {
    if (room !== this.room || st?.type !== 'call') return;
    this.roomCall = st;
    if (!st.active && this.ringing && String(this.ringing.roomId) === String(room.id)) this.#stopRing();
    this.#renderButton();
  }

  /**
   * The connection is back after an outage: join again. The server may not
   * have noticed yet that the old connection is gone, and its participant
   * would hold a place in the call until then: `replaces` takes it over.
   */
  async reconnected() {
    if (!this.call) return;
    console.debug('call: the connection is back: rejoining');
    const { roomId, name, myId } = this.call;
    this.#closePeers();
    this.call = null;
    await this.join(roomId, name, myId);
  }

  #renderButton() {
    const inThis = this.room && (this.call ?? this.rejoining)?.roomId === this.room.id;
    this.slot.hidden = !this.room;
    this.button.textContent = inThis ? 'Leave call' : this.call || this.rejoining ? 'Join call here' : 'Join call';
    this.button.setAttribute('aria-pressed', inThis ? 'true' : 'false');
    this.button.disabled = this.joining;
    const watchingThis = this.watching && this.room && this.watching.roomId === this.room.id;
    this.watchButton.textContent = watchingThis ? 'Stop watching' : 'Watch stream';
    this.watchButton.setAttribute('aria-pressed', watchingThis ? 'true' : 'false');
    const st = this.roomCall;
    const others = inThis || !st?.active ? '' : `Call in progress: ${st.participants.join(', ')}`;
    this.roomStatus.textContent = others;
    this.slot.classList.toggle('call-live', Boolean(others));
  }

  async #toggleWatch() {
    const room = this.room;
    if (!room) return;
    const was = this.watching;
    if (was) await this.#stopWatching();
    if (was?.roomId === room.id) return;
    await this.#watch(room);
  }

  /**
   * Plays the room's live stream (a WHIP publisher, e.g. OBS): one
   * receive-only connection, offered in full (WHEP sends no trickle here)
   * with a connection token as the bearer, answered by the SFU with the
   * tracks published at that moment.
   */
  async #watch(room) {
    const video = h('video', { autoplay: true, playsInline: true, controls: true, 'aria-label': `Live stream of ${room.displayName}` });
    const status = h('p', { class: 'hint', role: 'status', text: 'Connecting to the stream…' });
    const el = h('section', { class: 'stream-panel', 'aria-label': 'Live stream', dataset: { room: String(room.id) } },
      h('h3', { class: 'call-title', text: `Live stream in ${room.displayName}` }), video, status,
      h('button', { type: 'button', onclick: () => this.#stopWatching() }, 'Stop watching'));
    this.panel.before(el);
    const pc = new RTCPeerConnection();
    const w = { roomId: room.id, pc, location: '', token: '', el, status, video };
    this.watching = w;
    this.#renderButton();
    const stream = new MediaStream();
    video.srcObject = stream;
    pc.ontrack = ({ track }) => { stream.addTrack(track); el.dataset.tracks = String(stream.getTracks().length); };
    w.timer = setInterval(async () => {
      // What arrives, for the viewer and for tests: resolution and frames decoded.
      let report;
      try { report = await pc.getStats(); } catch { return; }
      report.forEach((st) => {
        if (st.type !== 'inbound-rtp' || st.kind !== 'video') return;
        el.dataset.framesDecoded = String(st.framesDecoded ?? 0);
        if (st.frameWidth && pc.connectionState === 'connected') status.textContent = `Live · ${st.frameWidth}×${st.frameHeight}`;
      });
    }, STATS_MS);
    pc.onconnectionstatechange = () => {
      el.dataset.connection = pc.connectionState;
      if (pc.connectionState === 'connected') status.textContent = 'Live';
      if (pc.connectionState === 'failed') status.textContent = 'The stream connection failed.';
    };
    try {
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      await pc.setLocalDescription();
      await new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') { resolve(); return; }
        pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
        setTimeout(resolve, 3000); // host candidates are enough on most networks
      });
      w.token = (await api.connectToken()).token;
      const res = await fetch(`/rtc/whep/${encodeURIComponent(room.id)}`, {
        method: 'POST', headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${w.token}` }, body: pc.localDescription.sdp,
      });
      if (this.watching !== w) return;
      if (res.status === 404) throw new Error('Nothing is streamed in this room now.');
      if (res.status !== 201) {
        let msg = `HTTP ${res.status}`;
        try { msg = (await res.json()).message ?? msg; } catch { /* not JSON */ }
        throw new Error(msg);
      }
      w.location = res.headers.get('Location') ?? '';
      await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    } catch (err) {
      if (this.watching === w) {
        status.textContent = `Cannot watch: ${err.message}`;
        pc.close();
        el.dataset.connection = 'closed';
      }
    }
  }

  async #stopWatching() {
    const w = this.watching;
    if (!w) return;
    this.watching = null;
    clearInterval(w.timer);
    w.pc.close();
    w.el.remove();
    this.#renderButton();
    if (w.location) {
      await fetch(w.location, { method: 'DELETE', headers: { Authorization: `Bearer ${w.token}` } }).catch(() => { /* it ends when the connection closes anyway */ });
    }
  }

  /**
   * A call_ring personal event: someone started a call in a direct room
   * with us. A prompt (and a tone, when the page may play sound) until we
   * answer, dismiss, the call ends (seen in the open room) or RING_MS pass.
   */
  ring(ev) {
    const roomId = Number(ev?.room);
    const by = String(ev?.by ?? 'someone');
    if (!roomId || this.call?.roomId === roomId) return;
    this.#stopRing();
    const answer = h('button', { type: 'button', class: 'primary', onclick: async () => {
      this.#stopRing();
      location.hash = `#/room/${roomId}`;
      if (this.call) await this.leave();
      await this.join(roomId, `@${by}`);
    } }, 'Answer');
    const dismiss = h('button', { type: 'button', onclick: () => this.#stopRing() }, 'Dismiss');
    const el = h('div', { class: 'call-ring', role: 'alertdialog', 'aria-label': 'Incoming call', dataset: { room: String(roomId) } },
      h('p', { text: `${by} is calling` }), h('span', { class: 'row' }, answer, dismiss));
    document.body.append(el);
    this.ringing = { roomId, by, el, timer: setTimeout(() => this.#stopRing(), RING_MS), beep: this.#tone() };
    announce(`${by} is calling`);
    answer.focus({ preventScroll: true });
  }

  #stopRing() {
    const r = this.ringing;
    if (!r) return;
    this.ringing = null;
    clearTimeout(r.timer);
    r.beep?.();
    r.el.remove();
  }

  /** A soft two-note tone every 2 s; returns its stop function (null when the page may not play sound). */
  #tone() {
    let ctx;
    try { ctx = new AudioContext(); } catch { return null; }
    if (ctx.state !== 'running') { ctx.close().catch(() => {}); return null; } // no user gesture yet: silent
    const play = () => {
      for (const [i, f] of [[0, 660], [1, 880]]) {
        const o = ctx.createOscillator();
        const g = ctx.createGain();
        o.frequency.value = f;
        g.gain.value = 0.05;
        o.connect(g).connect(ctx.destination);
        o.start(ctx.currentTime + i * 0.25);
        o.stop(ctx.currentTime + i * 0.25 + 0.2);
      }
    };
    play();
    const timer = setInterval(play, 2000);
    return () => { clearInterval(timer); ctx.close().catch(() => {}); };
  }

  async toggle() {
    if (!this.room) return;
    if ((this.call ?? this.rejoining)?.roomId === this.room.id) { await this.leave(); return; }
    if (this.call || this.rejoining) await this.leave();
    await this.join(this.room.id, this.room.displayName);
  }

  /**
   * Joins the call of roomId; replaces is our previous participant id, if
   * any. With rejoin (a rejoin after "node gone"), a failure keeps the
   * camera and microphone for the next try. Returns whether we are in.
   */
  async join(roomId, name, replaces, { rejoin = false } = {}) {
    if (this.ringing && String(this.ringing.roomId) === String(roomId)) this.#stopRing();
    if (!rejoin) this.#cancelRejoin();
    this.joining = true;
    this.#renderButton();
    try {
      if (!this.local) this.local = await this.#getMedia();
      this.#applyTrackState();
      // Pushes may arrive before the join's reply (we are in the call the
      // moment the server adds us); they are newer than its participant
      // list, so they are kept and applied after it (docs/calls.md, "Pushes").
      this.early = { roomId, pushes: [] };
      const res = await this.rpc('call.join', { room: roomId, state: this.state, ...(replaces && { replaces }) });
      if (res.mode !== 'mesh' && res.mode !== 'sfu') {
        this.rpc('call.leave', { room: roomId }).catch(() => {});
        throw new Error(`this app does not know calls in "${res.mode}" mode`);
      }
      this.call = { roomId, name, myId: res.participant, ice: res.ice_servers ?? [], peers: new Map(), mode: res.mode, sfu: null };
      this.#renderPanel();
      this.panel.dataset.mode = res.mode;
      for (const p of res.participants ?? []) this.#addPeer(p);
      if (res.mode === 'sfu') this.#enterSFU();
      const early = this.early?.pushes ?? [];
      this.early = null;
      for (const msg of early) this.onPush(msg);
      clearInterval(this.statsTimer);
      this.statsTimer = setInterval(() => this.#stats(), STATS_MS);
      announce(rejoin ? `Back in the call in ${name}` : `Joined the call in ${name}`);
      return true;
    } catch (err) {
      this.#error(`Could not join the call: ${err.message}`);
      if (!this.call && !rejoin) this.#stopLocal();
      return false;
    } finally {
      this.early = null;
      this.joining = false;
      this.#renderButton();
    }
  }

  /**
   * The call ended under us because its node died: close the connections,
   * keep our camera and microphone and the panel, and join again after
   * rejoinDelay, a few times, until one join gets us in. Leaving (or
   * joining another call) meanwhile cancels it.
   */
  #rejoin(call, reason) {
    this.call = null;
    clearInterval(this.statsTimer);
    this.#closePeers(call);
    for (const t of this.tiles?.querySelectorAll('.tile:not(.local)') ?? []) t.remove();
    this.#countTiles();
    const r = { roomId: call.roomId, name: call.name, myId: call.myId, attempt: 0, timer: 0 };
    this.rejoining = r;
    const next = () => {
      const delay = rejoinDelay(reason, r.attempt);
      if (delay === null) {
        this.#cancelRejoin();
        this.#stopLocal();
        this.panel.hidden = true;
        replace(this.panel);
        announce('The call ended: its server went away');
        this.#renderButton();
        return;
      }
      this.panel.dataset.rejoining = String(r.attempt + 1);
      this.#error('The server running the call went away. Rejoining…');
      r.timer = setTimeout(async () => {
        if (this.rejoining !== r) return;
        r.attempt += 1;
        if (await this.join(r.roomId, r.name, r.myId, { rejoin: true })) {
          if (this.rejoining === r) this.rejoining = null;
          delete this.panel.dataset.rejoining;
        } else if (this.rejoining === r) {
          next();
        }
      }, delay);
    };
    announce('The call was interrupted: rejoining');
    this.#renderButton();
    next();
  }

  /** Stops waiting to rejoin (the caller decides what the panel shows). */
  #cancelRejoin() {
    const r = this.rejoining;
    if (!r) return;
    this.rejoining = null;
    clearTimeout(r.timer);
    delete this.panel.dataset.rejoining;
  }

  async leave() {
    if (this.rejoining && !this.call) { // waiting to rejoin: just stop
      this.#cancelRejoin();
      this.#stopLocal();
      this.panel.hidden = true;
      replace(this.panel);
      this.#renderButton();
      announce('You left the call');
      return;
    }
    const call = this.#end('You left the call');
    if (!call) return;
    try { await this.rpc('call.leave', { room: call.roomId }); } catch { /* the server forgets us on disconnect anyway */ }
  }

  /** Ends the call here and returns it (null: none). */
  #end(message) {
    const call = this.call;
    if (!call) return null;
    this.call = null;
    clearInterval(this.statsTimer);
    this.#closePeers(call);
    this.#stopLocal();
    this.panel.hidden = true;
    for (const k of ['sfuSignaling', 'sfuIce', 'sfuIceStalls', 'sfuRestartAsks', 'sfuRestartOffers']) delete this.panel.dataset[k];
    replace(this.panel);
    this.#renderButton();
    announce(message);
    return call;
  }

  async #getMedia() {
    const tries = [{ audio: true, video: { width: 640, height: 360 } }, { audio: true }, { video: true }];
    for (const c of tries) {
      try { return await navigator.mediaDevices.getUserMedia(c); } catch { /* try less */ }
    }
    this.#error('No camera or microphone is available: you join to watch and listen.');
    return new MediaStream();
  }

  #stopLocal() {
    for (const s of [this.local, this.screen]) s?.getTracks().forEach((t) => t.stop());
    this.local = null;
    this.screen = null;
    this.state = { muted: false, camera: true, screen: false };
  }

  #closePeers(call = this.call) {
    for (const peer of call?.peers.values() ?? []) peer.pc?.close();
    call?.peers.clear();
    call?.sfu?.pc.close();
    if (call) call.sfu = null;
  }

  #applyTrackState() {
    this.local?.getAudioTracks().forEach((t) => { t.enabled = !this.state.muted; });
    this.local?.getVideoTracks().forEach((t) => { t.enabled = this.state.camera; });
    this.state.camera &&= (this.local?.getVideoTracks().length ?? 0) > 0;
  }

  // Peers and perfect negotiation.

  /** Our local description as we signal it: the screen share's msid renamed (markScreen). */
  #outgoing(pc) {
    const d = pc.localDescription.toJSON();
    return { ...d, sdp: markScreen(d.sdp, this.screen) };
  }

  /**
   * What a peer shows: cam holds its camera and microphone tracks (the
   * tile's video plays it, sound included), screens one stream per shared
   * screen track (each its own large tile). tracks and screenTracks hold the
   * receiving track ids, to attribute getStats entries.
   */
  #newPeer(p, pc) {
    return { id: p.id, user: p.user, polite: Boolean(p.polite), state: p.state ?? {}, pc,
      makingOffer: false, ignoreOffer: false, queue: Promise.resolve(), cam: new MediaStream(), screens: new Map(),
      tracks: new Set(), screenTracks: new Set(), tile: null, quality: '', layer: 'auto', iceRestarts: 0,
      offerTimer: 0, waitedForOffer: false };
  }

  /** Forgets a peer's received media (its connection is going away) and the videos showing it. */
  #dropMedia(peer) {
    peer.cam = new MediaStream();
    peer.tracks = new Set();
    peer.screenTracks = new Set();
    for (const s of peer.screens.values()) s.tile?.remove();
    peer.screens.clear();
    peer.tile?.querySelector('.tile-videos')?.replaceChildren();
    this.#countTiles();
  }

  /** Removes peer's screen tiles (a later share arrives as a new track event). */
  #dropScreens(peer) {
    for (const sc of peer.screens.values()) sc.tile?.remove();
    peer.screens.clear();
    peer.screenTracks.clear();
    this.#countTiles();
  }

  /**
   * A track arrived from peer over pc (its own connection, or the one to
   * "sfu"). A screen share (screenMsid) gets a stream of its own; anything
   * else joins the peer's camera stream. It leaves when the sender's stream
   * loses it (the remote side removed the track) or it ends.
   *
   * On the SFU the same track may come again for someone else: the SFU
   * reuses a freed m-line for the next forwarded track (docs/calls.md,
   * "m-lines are reused"), and Chromium then fires `track` on the same
   * transceiver with the same MediaStreamTrack (same id), muted in between
   * but never ended. So each event is a new assignment, by streams[0].id and
   * the msid of its m-line in the current remote description: whoever
   * showed the track before loses it first (its tile, and its share of
   * getStats, which finds a peer by track id).
   */
  #onTrack(peer, pc, { track, streams, transceiver }) {
    this.#disown(track);
    const screen = track.kind === 'video' && screenMsid(pc.remoteDescription?.sdp, transceiver?.mid);
    peer.tracks.add(track.id);
    if (screen) {
      peer.screenTracks.add(track.id);
      peer.screens.set(track.id, { stream: new MediaStream([track]), tile: null });
    } else {
      peer.cam.getTracks().filter((t) => t.kind === track.kind && t !== track).forEach((t) => peer.cam.removeTrack(t));
      peer.cam.addTrack(track);
    }
    const from = [...streams];
    const onRemove = (e) => { if (e.track === track) gone(); };
    const gone = () => {
      if (this.#owners.get(track) !== owner) return;
      owner.release();
      this.#renderTile(peer);
    };
    const owner = {
      peer,
      release: () => {
        this.#owners.delete(track);
        track.removeEventListener('ended', gone);
        for (const st of from) st.removeEventListener('removetrack', onRemove);
        peer.tracks.delete(track.id);
        if (screen) {
          peer.screens.get(track.id)?.tile?.remove();
          peer.screens.delete(track.id);
          peer.screenTracks.delete(track.id);
          this.#countTiles();
        } else if (peer.cam.getTracks().includes(track)) {
          peer.cam.removeTrack(track);
        }
      },
    };
    this.#owners.set(track, owner);
    track.addEventListener('ended', gone);
    for (const st of from) st.addEventListener('removetrack', onRemove);
    this.#renderTile(peer);
  }

  /** Takes track from whoever shows it (#onTrack), if anyone. */
  #disown(track) {
    const before = this.#owners.get(track);
    if (!before) return;
    before.release();
    this.#renderTile(before.peer);
  }

  #addPeer(p) {
    const call = this.call;
    if (!call || call.peers.has(p.id)) return call?.peers.get(p.id);
    if (call.mode === 'sfu') {
      // A tile only: its media comes over the connection to "sfu".
      const peer = this.#newPeer(p, null);
      call.peers.set(p.id, peer);
      this.#renderTile(peer);
      return peer;
    }
    const pc = new RTCPeerConnection({ iceServers: call.ice });
    const peer = this.#newPeer(p, pc);
    call.peers.set(p.id, peer);
    const signal = (msg) => this.rpc('call.signal', { room: call.roomId, to: p.id, ...msg }).catch(() => {});
    const offer = async () => {
      try {
        peer.makingOffer = true;
        await pc.setLocalDescription();
        signal({ description: this.#outgoing(pc) });
      } catch (err) {
        console.warn('call: offer failed', err);
      } finally {
        peer.makingOffer = false;
      }
    };
    // The first offer is the impolite side's (docs/calls.md, "Who offers"):
    // the polite side waits for it instead of offering at the same moment.
    // When both offered (every pair of a new mesh, and every pair at once
    // when a call returned from the SFU), the polite side rolled its offer
    // back and answered, and Chromium then gathered no ICE candidate for
    // that answer in about 1 of 8 cases: the pair sat at ICE "new" for good.
    // Should the offer never come (lost), the polite side offers after
    // FIRST_OFFER_WAIT_MS.
    pc.onnegotiationneeded = () => {
      if (!mayOfferFirst(peer.polite, Boolean(pc.remoteDescription), peer.waitedForOffer)) {
        peer.offerTimer ||= setTimeout(() => {
          peer.waitedForOffer = true;
          if (!pc.remoteDescription && pc.signalingState === 'stable') offer();
        }, FIRST_OFFER_WAIT_MS);
        return;
      }
      offer();
    };
    pc.onicecandidate = ({ candidate }) => { if (candidate) signal({ candidate: candidate.toJSON() }); };
    pc.oniceconnectionstatechange = () => this.#renderTile(peer);
    watchIce(pc, () => {
      peer.iceRestarts += 1;
      if (peer.tile) peer.tile.dataset.iceRestarts = String(peer.iceRestarts);
      // In the signal queue: never in the middle of applying a description.
      peer.queue = peer.queue.then(() => this.#refreshIce(call)).then(() => restartIce(pc)).catch((err) => console.warn('call: ICE restart failed', err));
      signal({ restart: true });
    });
    pc.ontrack = (ev) => this.#onTrack(peer, pc, ev);
    for (const t of this.local?.getTracks() ?? []) pc.addTrack(t, this.local);
    // Without a camera or microphone, still ask to receive both.
    if (!this.local?.getAudioTracks().length) pc.addTransceiver('audio', { direction: 'recvonly' });
    if (!this.local?.getVideoTracks().length) pc.addTransceiver('video', { direction: 'recvonly' });
    for (const t of this.screen?.getTracks() ?? []) peer.screenSender = pc.addTrack(t, this.screen);
    this.#renderTile(peer);
    return peer;
  }

  /**
   * Before an ICE restart (ours, or our answer to one): TURN credentials
   * within ICE_REFRESH_MARGIN_MS of their expiry could not open the relays a
   * new network may need, so fresh ones come from GET /rtc/ice-servers and
   * go to all of the call's connections (docs/calls.md "ICE restart", step
   * 1). Should that fail, the restart goes on with what it has.
   */
  async #refreshIce(call) {
    if (iceServersExpiry(call.ice) - Date.now() > ICE_REFRESH_MARGIN_MS) return;
    call.iceRefresh ??= (async () => {
      try {
        const { token } = await api.connectToken();
        const res = await fetch('/rtc/ice-servers', { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        call.ice = (await res.json()).ice_servers ?? [];
        for (const pc of [call.sfu?.pc, ...[...call.peers.values()].map((p) => p.pc)]) {
          if (pc && pc.signalingState !== 'closed') pc.setConfiguration({ ...pc.getConfiguration(), iceServers: call.ice });
        }
        console.debug('call: fresh TURN credentials before an ICE restart');
      } catch (err) {
        console.warn('call: no fresh TURN credentials', err);
      } finally {
        call.iceRefresh = null;
      }
    })();
    await call.iceRefresh;
  }

  /** Moves the call onto one connection to "sfu" (see the top of the file). */
  #enterSFU() {
    const call = this.call;
    for (const peer of call.peers.values()) {
      peer.pc?.close();
      peer.pc = null;
      this.#dropMedia(peer);
      peer.layer = 'auto'; // a new subscription on the SFU starts uncapped
    }
    call.mode = 'sfu';
    this.panel.dataset.mode = 'sfu';
    const pc = new RTCPeerConnection({ iceServers: call.ice });
    // stalls: times watchIce found the connection down; asks: bare restart
    // requests sent; restartOffers: the SFU's restart offers received;
    // askedAt/offeredAt: the last of each in this outage (shouldAskSFURestart).
    const sfu = { id: 'sfu', polite: true, pc, makingOffer: false, ignoreOffer: false, queue: Promise.resolve(), screenSender: null,
      stalls: 0, asks: 0, restartOffers: 0, askedAt: null, offeredAt: null };
    call.sfu = sfu;
    const signal = (msg) => this.rpc('call.signal', { room: call.roomId, to: 'sfu', ...msg }).catch(() => {});
    pc.onnegotiationneeded = async () => {
      try {
        sfu.makingOffer = true;
        await pc.setLocalDescription();
        signal({ description: this.#outgoing(pc) });
      } catch (err) {
        console.warn('call: offer to the SFU failed', err);
      } finally {
        sfu.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => { if (candidate) signal({ candidate: candidate.toJSON() }); };
    // Where the connection to the SFU stands, on the panel for tests and bug reports.
    pc.onsignalingstatechange = () => { if (call.sfu === sfu) this.panel.dataset.sfuSignaling = pc.signalingState; };
    pc.oniceconnectionstatechange = () => {
      if (call.sfu === sfu) this.panel.dataset.sfuIce = pc.iceConnectionState;
      console.debug(`call: ICE to the SFU ${pc.iceConnectionState}`);
      // Connected again: the outage is over, the next one may ask again.
      if (pc.iceConnectionState === 'connected' || pc.iceConnectionState === 'completed') sfu.askedAt = sfu.offeredAt = null;
      for (const peer of call.peers.values()) this.#renderTile(peer);
    };
    // The SFU makes the restart offer (docs/calls.md "ICE restart"): the app
    // asks for one with a bare restart signal, once per outage and only if
    // the SFU has not restarted first (shouldAskSFURestart), and answers it
    // in #onSignal like any offer from "sfu". It makes no restart offer of
    // its own: two restarts under way replace each other.
    watchIce(pc, (st) => {
      if (call.sfu !== sfu) return;
      sfu.stalls += 1;
      this.panel.dataset.sfuIceStalls = String(sfu.stalls);
      const now = performance.now();
      if (!shouldAskSFURestart(sfu.askedAt, sfu.offeredAt, now)) {
        console.debug(`call: ICE to the SFU still ${st}: the SFU's restart is under way`);
        return;
      }
      sfu.askedAt = now;
      sfu.asks += 1;
      this.panel.dataset.sfuRestartAsks = String(sfu.asks);
      console.debug(`call: ICE to the SFU ${st}: asking the SFU to restart`);
      signal({ restart: true });
    });
    pc.ontrack = (ev) => {
      // The stream id names the publisher (docs/calls.md).
      const peer = ev.streams[0] && call.peers.get(ev.streams[0].id);
      if (peer) this.#onTrack(peer, pc, ev);
      else this.#disown(ev.track); // a reused m-line's track, for no one we know: no longer the old one's
    };
    const [camera] = this.local?.getVideoTracks() ?? [];
    const [mic] = this.local?.getAudioTracks() ?? [];
    if (mic) pc.addTrack(mic, this.local);
    if (camera) {
      // Simulcast layers; the SFU forwards each subscriber the one its
      // bandwidth allows.
      const sendEncodings = simulcastLayers(camera.getSettings().height ?? 0);
      pc.addTransceiver(camera, { direction: 'sendonly', streams: [this.local], ...(sendEncodings && { sendEncodings }) });
    }
    // Nothing to send: still offer, so that the SFU can answer and then
    // offer the others' tracks.
    if (!mic && !camera) pc.addTransceiver('audio', { direction: 'recvonly' });
    for (const t of this.screen?.getTracks() ?? []) sfu.screenSender = pc.addTrack(t, this.screen);
    for (const peer of call.peers.values()) this.#renderTile(peer);
  }

  /** Back to a mesh: one connection per participant, with the roles we have. */
  #leaveSFU() {
    const call = this.call;
    call.sfu?.pc.close();
    call.sfu = null;
    call.mode = 'mesh';
    for (const k of ['sfuSignaling', 'sfuIce', 'sfuIceStalls', 'sfuRestartAsks', 'sfuRestartOffers']) delete this.panel.dataset[k];
    this.panel.dataset.mode = 'mesh';
    const ps = [...call.peers.values()].map(({ id, user, polite, state }) => ({ id, user, polite, state }));
    for (const peer of call.peers.values()) { this.#dropMedia(peer); peer.tile?.remove(); }
    call.peers.clear();
    for (const p of ps) this.#addPeer(p);
  }

  /** A {"push":"call"} frame, from the SDK's client-level 'push' event. */
  onPush(msg) {
    const call = this.call;
    if (msg.event !== 'signal') console.debug(`call: push ${msg.event}${msg.mode ? ` ${msg.mode}` : ''}${msg.participant ? ` ${msg.participant.user} ${msg.participant.id}` : ''}${msg.reason ? ` (${msg.reason})` : ''}`);
    if (!call && this.early && String(msg.room) === String(this.early.roomId)) { this.early.pushes.push(msg); return; }
    if (!call || String(msg.room) !== String(call.roomId)) return;
    switch (msg.event) {
      case 'joined':
        if (msg.participant) {
          this.#addPeer(msg.participant);
          announce(`${msg.participant.user} joined the call`);
        }
        break;
      case 'left': {
        // About ourselves: the server took us out (kicked from or left the
        // room, or replaced by a join of ours on another connection).
        // "node gone": the node running the call died; a join starts it
        // again on a live node (rejoinDelay).
        if (msg.participant?.id === call.myId) {
          if (rejoinDelay(msg.reason, 0) === null) this.#end('You are no longer in the call');
          else this.#rejoin(call, msg.reason);
          break;
        }
        const peer = call.peers.get(msg.participant?.id);
        if (!peer) break;
        peer.pc?.close();
        call.peers.delete(peer.id);
        this.#dropMedia(peer);
        peer.tile?.remove();
        this.#countTiles();
        announce(`${peer.user} left the call`);
        break;
      }
      case 'state': {
        const peer = call.peers.get(msg.participant?.id);
        if (!peer) break;
        // Sharing stopped: its tiles go now, not only once the renegotiation
        // that removes the track has gone round (slow on a loaded SFU).
        const stopped = peer.state?.screen && msg.participant.state?.screen === false;
        peer.state = msg.participant.state ?? {};
        if (stopped) this.#dropScreens(peer);
        this.#renderTile(peer);
        break;
      }
      case 'mode':
        if (msg.mode === 'sfu' && call.mode !== 'sfu') { this.#enterSFU(); announce('The call moved to the server'); }
        else if (msg.mode === 'mesh' && call.mode === 'sfu') this.#leaveSFU();
        break;
      case 'speakers': {
        const order = (msg.speakers ?? []).map((sp) => sp.id);
        for (const peer of call.peers.values()) {
          if (!peer.tile) continue;
          const i = order.indexOf(peer.id);
          peer.tile.classList.toggle('speaking', i === 0);
          if (i >= 0) peer.tile.dataset.speaking = String(i + 1); else delete peer.tile.dataset.speaking;
        }
        break;
      }
      case 'signal': {
        const peer = msg.from === 'sfu' ? call.sfu : call.peers.get(msg.from);
        if (!peer) break;
        // One signal at a time per peer, in arrival order.
        peer.queue = peer.queue.then(() => this.#onSignal(peer, msg)).catch((err) => console.warn('call: signal failed', err));
        break;
      }
      default:
    }
  }

  async #onSignal(peer, { description, candidate, restart }) {
    const { pc } = peer;
    // A mesh signal still queued when the call moved to the SFU (whose
    // switch closed the mesh connections): nothing to apply it to.
    if (!pc || pc.signalingState === 'closed') return;
    // A restart offer: our answer gathers anew, with credentials that must
    // still open relays (docs/calls.md "ICE restart", step 3).
    if (restart && description?.type === 'offer' && this.call) await this.#refreshIce(this.call);
    if (restart && description?.type === 'offer' && peer === this.call?.sfu) {
      // The SFU restarts ICE (on its own, or as we asked): ours to answer,
      // and no request of ours while it is under way (shouldAskSFURestart).
      peer.offeredAt = performance.now();
      peer.restartOffers += 1;
      this.panel.dataset.sfuRestartOffers = String(peer.restartOffers);
    }
    if (description) {
      const collision = description.type === 'offer' && (peer.makingOffer || pc.signalingState !== 'stable');
      peer.ignoreOffer = !peer.polite && collision;
      if (peer.ignoreOffer) return;
      await pc.setRemoteDescription(description); // a polite peer rolls back implicitly
      for (const c of peer.held?.splice(0) ?? []) {
        // Held before (below); one of an offer we ignored fails: no matter.
        try { await pc.addIceCandidate(c); } catch { /* not for this description */ }
      }
      if (description.type === 'offer') {
        await pc.setLocalDescription();
        await this.rpc('call.signal', { room: this.call.roomId, to: peer.id, description: this.#outgoing(pc) });
      }
    }
    if (candidate && !pc.remoteDescription) {
      // A candidate before the description it belongs to: the SFU's ICE
      // agent can send its first ones before its answer. Held until a
      // remote description is set (docs/calls.md, "Who offers"); added
      // then, it was lost ("The remote description was null").
      peer.held ??= [];
      if (peer.held.length < MAX_HELD_CANDIDATES) peer.held.push(candidate);
    } else if (candidate) {
      try { await pc.addIceCandidate(candidate); } catch (err) { if (!peer.ignoreOffer) throw err; }
    }
    if (restart && !description) {
      await this.#refreshIce(this.call); // as for our own restart
      pc.restartIce();
    }
  }

  // Controls.

  async #setState(change) {
    Object.assign(this.state, change);
    this.#applyTrackState();
    this.#renderControls();
    this.#renderLocalTile();
    if (this.call) {
      try { await this.rpc('call.state', { room: this.call.roomId, ...change }); } catch { /* shown locally anyway */ }
    }
  }

  async #toggleScreen() {
    if (this.screen) { this.#stopScreen(); return; }
    try {
      this.screen = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (err) {
      if (err?.name !== 'NotAllowedError') this.#error(`Screen sharing failed: ${err.message}`);
      return;
    }
    const [track] = this.screen.getVideoTracks();
    track.addEventListener('ended', () => this.#stopScreen());
    for (const peer of this.call?.peers.values() ?? []) if (peer.pc) peer.screenSender = peer.pc.addTrack(track, this.screen);
    if (this.call?.sfu) this.call.sfu.screenSender = this.call.sfu.pc.addTrack(track, this.screen);
    await this.#setState({ screen: true });
  }

  #stopScreen() {
    if (!this.screen) return;
    this.screen.getTracks().forEach((t) => t.stop());
    for (const peer of [...(this.call?.peers.values() ?? []), this.call?.sfu]) {
      if (peer?.screenSender) { try { peer.pc.removeTrack(peer.screenSender); } catch { /* closed */ } }
      if (peer) peer.screenSender = null;
    }
    this.screen = null;
    this.#setState({ screen: false });
  }

  // Rendering.

  #renderPanel() {
    const call = this.call;
    this.panel.hidden = false;
    this.tiles = h('ul', { class: 'call-tiles', 'aria-label': 'Participants' });
    this.controls = h('div', { class: 'call-controls', role: 'toolbar', 'aria-label': 'Call controls' });
    this.errorEl = h('p', { class: 'error', role: 'alert' });
    replace(this.panel,
      h('h3', { class: 'call-title', text: `Call in ${call.name}` }),
      this.tiles, this.controls, this.errorEl);
    this.#renderLocalTile();
    this.#renderControls();
  }

  #renderControls() {
    if (!this.controls) return;
    const hasAudio = (this.local?.getAudioTracks().length ?? 0) > 0;
    const hasVideo = (this.local?.getVideoTracks().length ?? 0) > 0;
    const canShare = Boolean(navigator.mediaDevices?.getDisplayMedia);
    replace(this.controls,
      h('button', { type: 'button', 'aria-pressed': String(this.state.muted), disabled: !hasAudio,
        onclick: () => this.#setState({ muted: !this.state.muted }) }, this.state.muted ? 'Unmute' : 'Mute'),
      h('button', { type: 'button', 'aria-pressed': String(!this.state.camera), disabled: !hasVideo,
        onclick: () => this.#setState({ camera: !this.state.camera }) }, this.state.camera ? 'Camera off' : 'Camera on'),
      canShare ? h('button', { type: 'button', 'aria-pressed': String(Boolean(this.screen)),
        onclick: () => this.#toggleScreen() }, this.screen ? 'Stop sharing' : 'Share screen') : null,
      h('button', { type: 'button', class: 'danger', onclick: () => this.leave() }, 'Leave call'));
  }

  /** The grid's layout follows the number of tiles (call.css). */
  #countTiles() {
    if (this.tiles) this.tiles.dataset.count = String(this.tiles.children.length);
  }

  #renderLocalTile() {
    if (!this.tiles) return;
    let tile = this.tiles.querySelector('.tile.local');
    if (!tile) {
      const video = h('video', { autoplay: true, playsInline: true, muted: true, 'aria-label': 'Your camera' });
      video.muted = true;
      video.srcObject = this.local;
      tile = h('li', { class: 'tile local' }, video, h('span', { class: 'tile-name' }));
      this.tiles.prepend(tile);
      this.#countTiles();
    }
    let screenVideo = tile.querySelector('video.screen');
    if (this.screen && !screenVideo) {
      screenVideo = h('video', { class: 'screen', autoplay: true, playsInline: true, muted: true, 'aria-label': 'Your screen' });
      screenVideo.muted = true;
      screenVideo.srcObject = this.screen;
      tile.append(screenVideo);
    } else if (!this.screen && screenVideo) {
      screenVideo.remove();
    }
    tile.querySelector('.tile-name').textContent = `You${this.state.muted ? ' · muted' : ''}${this.state.camera ? '' : ' · camera off'}${this.state.screen ? ' · sharing' : ''}`;
  }

  #renderTile(peer) {
    if (!this.tiles || !this.call?.peers.has(peer.id)) return;
    if (!peer.tile) {
      const menu = h('select', { class: 'tile-layer', 'aria-label': `Video quality of ${peer.user}`,
        onchange: () => this.#setLayer(peer, menu.value) },
      ...QUALITY_LAYERS.map((l) => h('option', { value: l }, l)));
      peer.tile = h('li', { class: 'tile', dataset: { participant: peer.id, user: peer.user } },
        h('div', { class: 'tile-videos' }), h('span', { class: 'tile-name' }), h('span', { class: 'tile-quality' }), menu);
      this.tiles.append(peer.tile);
      this.#countTiles();
    }
    const videos = peer.tile.querySelector('.tile-videos');
    const hasCam = peer.cam.getTracks().some((t) => t.readyState === 'live');
    let v = videos.querySelector('video');
    if (hasCam && !v) {
      v = h('video', { autoplay: true, playsInline: true, 'aria-label': `${peer.user}'s camera` });
      v.srcObject = peer.cam;
      videos.append(v);
    } else if (!hasCam && v) {
      v.remove();
    }
    // Screen shares: a large tile each, first in the grid.
    for (const [id, sc] of peer.screens) {
      if (sc.tile) continue;
      const sv = h('video', { class: 'screen', autoplay: true, playsInline: true, muted: true, 'aria-label': `${peer.user}'s screen` });
      sv.muted = true;
      sv.srcObject = sc.stream;
      sc.tile = h('li', { class: 'tile screen-tile', dataset: { participant: peer.id, screenOf: peer.user, track: id } },
        sv, h('span', { class: 'tile-name', text: `${peer.user}'s screen` }));
      this.tiles.prepend(sc.tile);
      this.#countTiles();
    }
    const s = peer.state ?? {};
    const conn = (peer.pc ?? this.call.sfu?.pc)?.iceConnectionState ?? 'new';
    peer.tile.querySelector('.tile-name').textContent = `${peer.user}${s.muted ? ' · muted' : ''}${s.camera === false ? ' · camera off' : ''}${s.screen ? ' · sharing' : ''}`;
    peer.tile.querySelector('.tile-quality').textContent = conn === 'connected' || conn === 'completed' ? peer.quality : conn;
    peer.tile.dataset.connection = conn;
    const menu = peer.tile.querySelector('.tile-layer');
    menu.hidden = this.call.mode !== 'sfu'; // a mesh sends one stream: nothing to choose
    if (document.activeElement !== menu) menu.value = peer.layer;
    peer.tile.dataset.layer = peer.layer;
  }

  /** The quality menu of peer's tile: caps the layer the SFU sends us of its camera (rpc call.quality). */
  async #setLayer(peer, layer) {
    const call = this.call;
    if (!call || call.mode !== 'sfu') return;
    const was = peer.layer;
    peer.layer = layer;
    this.#renderTile(peer);
    try {
      await this.rpc('call.quality', { room: call.roomId, peer: peer.id, layer });
      announce(`${peer.user}'s video: ${layer}`);
    } catch (err) {
      if (peer.layer === layer) peer.layer = was;
      const menu = peer.tile?.querySelector('.tile-layer');
      if (menu) menu.value = peer.layer; // even while it has the focus
      this.#renderTile(peer);
      this.#error(`Could not change ${peer.user}'s video quality: ${err.message}`);
    }
  }

  /**
   * Quality per peer from getStats, every STATS_MS: round-trip time, loss,
   * the received video's resolution, bitrate and frame rate (shown on the
   * tile and written to its data-* attributes), and frames decoded. In a
   * mesh the tile of the loudest peer (inbound audio level above
   * SPEAKING_LEVEL) is marked speaking; on the SFU the server's speakers
   * push does that.
   */
  async #stats() {
    const call = this.call;
    if (!call) return;
    const now = performance.now();
    const per = new Map(); // peer -> totals
    const totals = (peer) => {
      let v = per.get(peer);
      if (!v) per.set(peer, v = { rtt: null, lost: 0, received: 0, fps: 0, framesDecoded: 0, bytes: 0, width: 0, height: 0, level: 0, energy: 0, seconds: 0 });
      return v;
    };
    const read = (report, peerOf, rttFor) => {
      report.forEach((s) => {
        if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && s.currentRoundTripTime !== undefined) rttFor(s.currentRoundTripTime * 1000);
        if (s.type !== 'inbound-rtp') return;
        const peer = peerOf(s);
        if (!peer) return;
        if (s.kind === 'video' && peer.screenTracks.has(s.trackIdentifier)) {
          // A shared screen: its own tile's figures, not the camera's.
          const sc = peer.screens.get(s.trackIdentifier);
          if (sc?.tile) {
            Object.assign(sc.tile.dataset, { framesDecoded: String(s.framesDecoded ?? 0),
              resolution: s.frameWidth ? `${s.frameWidth}x${s.frameHeight}` : '' });
          }
          return;
        }
        const v = totals(peer);
        v.lost += s.packetsLost ?? 0;
        v.received += s.packetsReceived ?? 0;
        if (s.kind === 'audio') {
          v.level = Math.max(v.level, s.audioLevel ?? 0);
          v.energy += s.totalAudioEnergy ?? 0;
          v.seconds += s.totalSamplesDuration ?? 0;
        }
        if (s.kind === 'video') {
          v.fps = Math.max(v.fps, s.framesPerSecond ?? 0);
          v.framesDecoded += s.framesDecoded ?? 0;
          v.bytes += s.bytesReceived ?? 0;
          if ((s.frameWidth ?? 0) * (s.frameHeight ?? 0) > v.width * v.height) { v.width = s.frameWidth; v.height = s.frameHeight; }
        }
      });
    };
    if (call.sfu) {
      let report;
      try { report = await call.sfu.pc.getStats(); } catch { return; }
      let rtt = null;
      const peers = [...call.peers.values()];
      read(report, (s) => peers.find((p) => p.tracks.has(s.trackIdentifier)), (r) => { rtt = r; });
      for (const peer of peers) totals(peer).rtt = rtt;
    } else {
      for (const peer of call.peers.values()) {
        if (!peer.pc) continue;
        let report;
        try { report = await peer.pc.getStats(); } catch { continue; }
        const v = totals(peer);
        read(report, () => peer, (r) => { v.rtt = r; });
      }
    }
    if (this.call !== call) return;
    let loudest = null;
    for (const peer of call.peers.values()) {
      const v = totals(peer);
      // audioLevel is the level at the moment of the sample: a stats
      // interval can fall between two syllables (or the fake microphone's
      // beeps) every time. The RMS level over the whole interval, from the
      // growth of totalAudioEnergy and totalSamplesDuration, is not.
      if (peer.lastAudio && v.seconds > peer.lastAudio.seconds && v.energy >= peer.lastAudio.energy) {
        v.level = Math.max(v.level, Math.sqrt((v.energy - peer.lastAudio.energy) / (v.seconds - peer.lastAudio.seconds)));
      }
      peer.lastAudio = { energy: v.energy, seconds: v.seconds };
      const loss = v.received + v.lost ? (v.lost / (v.received + v.lost)) * 100 : 0;
      const level = (v.rtt !== null && v.rtt > 400) || loss > 8 ? 'poor' : (v.rtt !== null && v.rtt > 150) || loss > 2 ? 'fair' : 'good';
      const kbps = peer.lastBytes !== undefined && v.bytes >= peer.lastBytes && now > peer.lastAt
        ? Math.round(((v.bytes - peer.lastBytes) * 8) / (now - peer.lastAt)) : 0;
      peer.lastBytes = v.bytes;
      peer.lastAt = now;
      peer.quality = [level, v.rtt !== null ? `${Math.round(v.rtt)} ms` : '', v.width ? `${v.width}×${v.height}` : '',
        kbps ? `${kbps} kbit/s` : '', v.fps ? `${Math.round(v.fps)} fps` : ''].filter(Boolean).join(' · ');
      if (peer.tile) {
        Object.assign(peer.tile.dataset, { quality: level, framesDecoded: String(v.framesDecoded),
          resolution: v.width ? `${v.width}x${v.height}` : '', kbps: String(kbps) });
      }
      if (!call.sfu && v.level > SPEAKING_LEVEL && (!loudest || v.level > totals(loudest).level)) loudest = peer;
      this.#renderTile(peer);
    }
    if (!call.sfu) {
      for (const peer of call.peers.values()) {
        if (!peer.tile) continue;
        peer.tile.classList.toggle('speaking', peer === loudest);
        if (peer === loudest) peer.tile.dataset.speaking = '1'; else delete peer.tile.dataset.speaking;
      }
    }
  }

  #error(text) {
    if (this.errorEl?.isConnected) this.errorEl.textContent = text;
    else announce(text);
  }
}
