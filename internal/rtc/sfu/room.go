package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Signal is one signaling message between a participant and the SFU: a
// session description, an ICE candidate, or both.
type Signal struct {
	Description *webrtc.SessionDescription `json:"description,omitempty"`
	Candidate   *webrtc.ICECandidateInit   `json:"candidate,omitempty"`
	// Restart marks the SFU's ICE-restart offer (see Peer.RestartICE).
	Restart bool `json:"restart,omitempty"`
}

// Speaker is one entry of a room's active-speaker list.
type Speaker struct {
	ID    string  `json:"id"`
	Level float64 `json:"level"` // 0..1, louder is higher
}

// RoomConfig configures a Room.
type RoomConfig struct {
	// OnSpeakers is called with the active speakers, loudest first,
	// whenever the list changes (at most once per SFU tick). It must not
	// block or call back into the Room.
	OnSpeakers func([]Speaker)
}

// Stats are a room's counters.
type Stats struct {
	Forwarded     uint64 // RTP packets written to subscribers
	Retransmitted uint64 // of those, NACK answers
	RTX           uint64 // of those, sent on the subscriber's RTX stream
	PLIs          uint64 // keyframe requests sent to publishers
	Probes        uint64 // padding-only packets sent to probe a subscriber's bandwidth
	ICERestarts   uint64 // ICE-restart offers the SFU sent (see Peer.RestartICE)
	Reused        uint64 // down tracks put on a freed m-line instead of a new one (see Peer.freeTransceiver)
}

type roomStats struct {
	forwarded, retransmitted, rtx, plis, probes, iceRestarts, reused atomic.Uint64
}

// speakerThreshold: a participant is speaking when its mean audio level is
// louder than -50 dBov (RFC 6464 levels are -dBov, 127 is silence).
const speakerThreshold = 127 - 50

// Room is one call's media: participants, each with one peer connection that
// both publishes and subscribes, and every published track forwarded to
// every other participant.
//
// Lock order: Room.mu, then Peer.mu, then upTrack.mu, then DownTrack.mu;
// Peer.candMu is a leaf (after Peer.mu). Callbacks (send, OnSpeakers) are
// called without Room.mu.
type Room struct {
	sfu   *SFU
	cfg   RoomConfig
	log   *slog.Logger
	stats roomStats

	mu     sync.Mutex
	peers  map[string]*Peer
	tracks []*upTrack
	// recvs: each track's receiver at its publisher's connection, which
	// tells when the publisher stopped sending it (see unpublishEnded).
	recvs    map[*upTrack]*webrtc.RTPReceiver
	closed   bool
	speakers []Speaker
	loudness map[string]float64
	// tracksCh is closed (and replaced) whenever a track is published.
	tracksCh chan struct{}

	done chan struct{}
}

// TrackPublished returns the number of tracks published in the room and a
// channel that is closed when the next one is.
func (r *Room) TrackPublished() (int, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.tracks), r.tracksCh
}

// NewRoom returns an empty room.
func (s *SFU) NewRoom(cfg RoomConfig) (*Room, error) {
	r := &Room{sfu: s, cfg: cfg, log: s.log, peers: map[string]*Peer{}, recvs: map[*upTrack]*webrtc.RTPReceiver{}, loudness: map[string]float64{}, tracksCh: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("sfu: closed")
	}
	s.rooms[r] = struct{}{}
	go r.tickLoop()
	return r, nil
}

// Stats returns the room's counters.
func (r *Room) Stats() Stats {
	return Stats{Forwarded: r.stats.forwarded.Load(), Retransmitted: r.stats.retransmitted.Load(), RTX: r.stats.rtx.Load(), PLIs: r.stats.plis.Load(), Probes: r.stats.probes.Load(), ICERestarts: r.stats.iceRestarts.Load(), Reused: r.stats.reused.Load()}
}

// Peer is one participant's peer connection to the SFU. The SFU is the
// impolite side of perfect negotiation: it ignores an offer that collides
// with its own and waits for the answer; the client rolls back.
//
// mu guards the negotiation state and the subscriber's estimate inputs.
type Peer struct {
	id    string
	room  *Room
	pc    *webrtc.PeerConnection
	api   *webrtc.API // pc's, for the senders of reused m-lines
	send  func(Signal)
	pacer *rtxPacer // of the peer connection's GCC estimator

	mu         sync.Mutex
	pending    bool // tracks changed while an offer was out: offer again
	candidates []webrtc.ICECandidateInit
	downs      map[*upTrack]*DownTrack
	estimator  cc.BandwidthEstimator
	remb       uint64
	rembAt     time.Time
	lastEst    int64              // estimate at the last allocation
	fellAt     time.Time          // when the estimate last fell by more than 10%
	feedback   bool               // REMB or TWCC feedback came in: the estimate is not a guess
	oneShot    bool               // negotiated once over HTTP (WHIP/WHEP): never offered to
	viewer     bool               // receives only: its tracks are ignored (set before register)
	caps       map[string]Quality // per publisher id: the subscriber's choice (SetQuality); absent = auto
	// m-lines (by mid) by who created them (see declineRTX): the SFU (in
	// its offers) and the client (in its offers).
	sfuMids, clientMids map[string]bool
	lastMid             int // the SFU's m-lines are "s1", "s2", … (see addDownTransceiver)
	// own: the transceivers addDownTransceiver created, in order; a free
	// one is reused before a new one is added (freeTransceiver).
	own    []*webrtc.RTPTransceiver
	done   chan struct{}
	closed bool
	// ICE watch (see watchICE): the connection's state, the timer that
	// restarts ICE after a grace or a retry wait, restarts since it was
	// last connected, and a restart waiting for the answer to an offer.
	iceState       webrtc.ICEConnectionState
	iceTimer       *time.Timer
	iceRestarts    int
	restartPending bool

	// The SFU's own ICE candidates wait while a description is being
	// made, until it is sent (see holdCandidates). candMu is taken alone
	// (pion's gatherer calls in with it), never with another lock held
	// after it.
	candMu   sync.Mutex
	candHold bool
	candHeld []webrtc.ICECandidateInit
}

// ID is the participant id.
func (p *Peer) ID() string { return p.id }

// Join adds a participant. send receives the SFU's offers, answers and ICE
// candidates for the client; it must not block or call into the Room.
// The client then sends its offer (with its tracks) through Peer.Signal.
func (r *Room) Join(id string, send func(Signal)) (*Peer, error) {
	return r.join(id, false, send)
}

// JoinViewer adds a participant that only receives (a viewer of a
// broadcast): what it sends is never forwarded, and its tracks are not read.
func (r *Room) JoinViewer(id string, send func(Signal)) (*Peer, error) {
	return r.join(id, true, send)
}

func (r *Room) join(id string, viewer bool, send func(Signal)) (*Peer, error) {
	p, err := r.newPeer(id, send)
	if err != nil {
		return nil, err
	}
	p.viewer = viewer
	tracks, err := r.register(p)
	if err != nil {
		return nil, err
	}
	added := false
	for _, u := range tracks {
		if r.subscribe(p, u) {
			added = true
		}
	}
	if added {
		p.negotiate()
	}
	return p, nil
}

// JoinOneShot adds a participant that negotiates once, with offer, as WHIP
// publishers and WHEP viewers do (RFC 9725): it returns the complete answer,
// ICE candidates included. A viewer receives the tracks published when it
// joins, on the transceivers its offer brought; tracks published later are
// not offered to it (there is no channel to offer them on).
func (r *Room) JoinOneShot(ctx context.Context, id string, offer webrtc.SessionDescription) (*Peer, *webrtc.SessionDescription, error) {
	p, err := r.newPeer(id, func(Signal) {})
	if err != nil {
		return nil, nil, err
	}
	p.oneShot = true
	fail := func(err error) (*Peer, *webrtc.SessionDescription, error) {
		r.Leave(id)
		_ = p.pc.Close()
		return nil, nil, err
	}
	if err := p.pc.SetRemoteDescription(offer); err != nil {
		_ = p.pc.Close()
		return nil, nil, fmt.Errorf("sfu: offer from %s: %w", id, err)
	}
	p.mu.Lock()
	p.declineRTX()
	p.mu.Unlock()
	tracks, err := r.register(p)
	if err != nil {
		_ = p.pc.Close()
		return nil, nil, err
	}
	for _, u := range tracks {
		r.subscribe(p, u) // AddTrack takes the offer's unused receive-only transceivers
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("sfu: answer %s: %w", id, err))
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return fail(fmt.Errorf("sfu: answer %s: %w", id, err))
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(fmt.Errorf("sfu: gathering candidates for %s: %w", id, ctx.Err()))
	}
	return p, p.pc.LocalDescription(), nil
}

// Done is closed when the participant's peer connection has failed or
// closed.
func (p *Peer) Done() <-chan struct{} { return p.done }

// AddCandidate adds a remote ICE candidate (WHIP/WHEP PATCH trickle).
func (p *Peer) AddCandidate(c webrtc.ICECandidateInit) error {
	return p.pc.AddICECandidate(c)
}

// newPeer makes a participant's peer connection; register adds it.
func (r *Room) newPeer(id string, send func(Signal)) (*Peer, error) {
	p := &Peer{id: id, room: r, send: send, downs: map[*upTrack]*DownTrack{}, pacer: newRTXPacer(),
		sfuMids: map[string]bool{}, clientMids: map[string]bool{}}
	api, err := r.sfu.newAPI(p.pacer, func(e cc.BandwidthEstimator) {
		p.mu.Lock()
		p.estimator = e
		p.mu.Unlock()
		e.OnTargetBitrateChange(func(int) {
			p.mu.Lock()
			p.feedback = true
			p.mu.Unlock()
		})
	})
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("sfu: peer connection for %s: %w", id, err)
	}
	p.pc, p.api = pc, api
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			p.sendCandidate(c.ToJSON())
		}
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, recv *webrtc.RTPReceiver) { r.addTrack(p, t, recv) })
	pc.OnICEConnectionStateChange(p.watchICE)
	p.done = make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed {
			r.log.Info("sfu: peer connection failed", "participant", id)
		}
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			once.Do(func() { close(p.done) })
		}
	})
	return p, nil
}

// register adds p to the room and returns the tracks published so far.
func (r *Room) register(p *Peer) ([]*upTrack, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		_ = p.pc.Close()
		return nil, errors.New("sfu: room closed")
	}
	if _, dup := r.peers[p.id]; dup {
		_ = p.pc.Close()
		return nil, fmt.Errorf("sfu: participant %s already joined", p.id)
	}
	r.peers[p.id] = p
	return append([]*upTrack(nil), r.tracks...), nil
}

// Tracks is the number of tracks published in the room.
func (r *Room) Tracks() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.tracks)
}

// Len is the number of participants.
func (r *Room) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.peers)
}

// Peer returns a participant, or nil.
func (r *Room) Peer(id string) *Peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peers[id]
}

// Leave removes a participant: its peer connection closes, its tracks stop
// being forwarded, and the others are renegotiated without them.
func (r *Room) Leave(id string) {
	r.mu.Lock()
	p := r.peers[id]
	if p == nil {
		r.mu.Unlock()
		return
	}
	delete(r.peers, id)
	delete(r.loudness, id)
	gone := r.removeTracksLocked(func(u *upTrack) bool { return u.pub == p })
	others := r.peersLocked(nil)
	r.mu.Unlock()

	p.mu.Lock()
	p.closed = true
	p.stopICETimerLocked()
	for u, d := range p.downs {
		u.removeDown(d)
	}
	p.mu.Unlock()
	_ = p.pc.Close()
	r.unsubscribe(gone, others)
}

// removeTracksLocked takes the tracks for which drop is true out of the
// room and returns them. Caller holds r.mu.
func (r *Room) removeTracksLocked(drop func(*upTrack) bool) []*upTrack {
	var gone []*upTrack
	kept := r.tracks[:0]
	for _, u := range r.tracks {
		if drop(u) {
			gone = append(gone, u)
			delete(r.recvs, u)
		} else {
			kept = append(kept, u)
		}
	}
	clear(r.tracks[len(kept):])
	r.tracks = kept
	return gone
}

// peersLocked lists the participants but except. Caller holds r.mu.
func (r *Room) peersLocked(except *Peer) []*Peer {
	out := make([]*Peer, 0, len(r.peers))
	for _, o := range r.peers {
		if o != except {
			out = append(out, o)
		}
	}
	return out
}

// unsubscribe takes the down tracks of gone off subs' connections and
// renegotiates the connections that had one: their m-lines turn
// recvonly, free for later tracks once answered (see freeTransceiver).
func (r *Room) unsubscribe(gone []*upTrack, subs []*Peer) {
	if len(gone) == 0 {
		return
	}
	for _, o := range subs {
		removed := false
		o.mu.Lock()
		for _, u := range gone {
			if d := o.downs[u]; d != nil {
				delete(o.downs, u)
				u.removeDown(d)
				_ = o.pc.RemoveTrack(d.sender)
				removed = true
			}
		}
		o.mu.Unlock()
		if removed {
			o.negotiate()
		}
	}
}

// unpublishEnded ends the forwarding of the tracks pub stopped sending
// without leaving (a browser's removeTrack, as when a screen share stops):
// after each description pub's client sends, a track whose receiver is
// gone from pub's connection (pion replaces the receiver of a track whose
// SSRC or rid left the description) or sits on an m-line the client no
// longer sends on has ended. Its down tracks leave the subscribers'
// connections, whose m-lines the next track may then take. Without this a
// stopped track kept its m-line at every subscriber, and each new share
// added one more.
func (r *Room) unpublishEnded(pub *Peer) {
	if pub.oneShot || pub.viewer {
		return // negotiated once: its tracks end when it leaves
	}
	remote := parseDirections(pub.pc.CurrentRemoteDescription())
	if remote == nil {
		return
	}
	trs := pub.pc.GetTransceivers()
	sent := func(recv *webrtc.RTPReceiver) bool {
		for _, tr := range trs {
			if tr.Receiver() == recv {
				st, ok := remote[tr.Mid()]
				return ok && st.sends() && !st.rejected
			}
		}
		return false
	}
	r.mu.Lock()
	if r.closed || r.peers[pub.id] != pub {
		r.mu.Unlock()
		return
	}
	gone := r.removeTracksLocked(func(u *upTrack) bool { return u.pub == pub && !sent(r.recvs[u]) })
	others := r.peersLocked(pub)
	r.mu.Unlock()
	for _, u := range gone {
		r.log.Debug("sfu: track ended", "track", u.id)
	}
	r.unsubscribe(gone, others)
}

// Close ends the room and every peer connection in it.
func (r *Room) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	ids := make([]string, 0, len(r.peers))
	for id := range r.peers {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	close(r.done)
	for _, id := range ids {
		r.Leave(id)
	}
	r.sfu.mu.Lock()
	delete(r.sfu.rooms, r)
	r.sfu.mu.Unlock()
}

// addTrack is pion's OnTrack for a publisher: a new track, or another
// simulcast layer of one already known.
func (r *Room) addTrack(pub *Peer, t *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	if pub.viewer {
		r.log.Debug("sfu: a viewer's track is not forwarded", "participant", pub.id, "track", t.ID())
		return
	}
	if strings.EqualFold(t.Codec().MimeType, webrtc.MimeTypeRTX) {
		// A repair stream pion could not tie to its layer (an RTX SSRC
		// the offer did not declare, sent without repaired-rtp-stream-id):
		// its payloads are not media and must never be forwarded.
		r.log.Debug("sfu: an RTX stream pion did not unwrap is ignored", "participant", pub.id, "ssrc", t.SSRC())
		return
	}
	id := pub.id + "/" + t.ID()
	r.mu.Lock()
	var u *upTrack
	for _, x := range r.tracks {
		if x.id == id && r.recvs[x] == recv {
			u = x
		}
	}
	// The same track id on another receiver: the client stopped the
	// track and sent it again (a browser's removeTrack and addTrack of
	// one MediaStreamTrack) before unpublishEnded saw the first end.
	stale := r.removeTracksLocked(func(x *upTrack) bool { return x.id == id && x != u })
	isNew := u == nil
	if isNew {
		u = newUpTrack(r, pub, t, recv)
		r.tracks = append(r.tracks, u)
		r.recvs[u] = recv
		close(r.tracksCh)
		r.tracksCh = make(chan struct{})
	}
	var subs []*Peer
	if isNew {
		for _, o := range r.peers {
			if o != pub && !o.oneShot {
				subs = append(subs, o)
			}
		}
	}
	others := r.peersLocked(pub)
	r.mu.Unlock()
	r.unsubscribe(stale, others)
	u.addLayer(t)
	r.log.Debug("sfu: track", "track", id, "rid", t.RID(), "codec", t.Codec().MimeType)
	for _, s := range subs {
		if r.subscribe(s, u) {
			s.negotiate()
		}
	}
}

// subscribe adds a down track of u to p's peer connection; the caller
// negotiates.
func (r *Room) subscribe(p *Peer, u *upTrack) bool {
	if u.pub == p {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.downs[u] != nil {
		return false
	}
	d := &DownTrack{up: u, sub: p, fwd: NewForwarder(u.clockRate)}
	var sender *webrtc.RTPSender
	var err error
	if p.oneShot {
		// A WHEP viewer's offer brought receive-only m-lines for what it
		// wants; AddTrack takes them (there is no later offer to add
		// m-lines in).
		sender, err = p.pc.AddTrack(d)
	} else {
		sender, err = p.addDownTransceiver(d)
	}
	if err != nil {
		r.log.Warn("sfu: add down track", "participant", p.id, "track", u.id, "err", err)
		return false
	}
	d.sender = sender
	p.downs[u] = d
	for _, tr := range p.pc.GetTransceivers() {
		if tr.Sender() == sender && p.clientMids[tr.Mid()] {
			// AddTrack took a transceiver of the client's m-line,
			// where declineRTX took RTX off.
			d.noRTX.Store(true)
		}
	}
	// Start low: the lowest layer costs the least keyframe and the
	// allocator climbs from there as the estimate allows. A camera the
	// subscriber turned off stays paused.
	if u.kind == webrtc.RTPCodecTypeVideo && !u.screen && p.caps[u.pub.id] == QualityOff {
		d.fwd.SetTarget(-1)
	} else {
		d.fwd.SetTarget(0)
	}
	u.addDown(d)
	go d.rtcpLoop()
	return true
}

// addDownTransceiver puts a down track on an m-line of the SFU's own: a
// free one of the same kind when there is one (reuseTransceiver), else a
// new one, named at once (mid "s1", "s2", …), so that it never lands on an
// m-line the client created. pion would put it there otherwise: AddTrack
// reuses any transceiver with a free sender whose remote side may receive,
// which includes a client's own sendrecv camera or microphone m-line; and
// an unnamed transceiver added before the client's next offer is matched
// to a new m-line of that offer by kind. The SFU then sent another
// participant's video on the publisher's own (simulcast) transceiver,
// where a pion client fires no OnTrack. The transceiver is sendrecv, as
// AddTrack makes it: a browser's addTrack may later reuse the m-line to
// send (the web app's screen share does), and the SFU must receive there.
// Clients name their m-lines with numbers; the "s" keeps the SFU's names
// apart from those a client picks before it sees them.
// Caller holds p.mu.
func (p *Peer) addDownTransceiver(d *DownTrack) (*webrtc.RTPSender, error) {
	if tr := p.freeTransceiver(d.Kind()); tr != nil {
		return p.reuseTransceiver(tr, d)
	}
	tr, err := p.pc.AddTransceiverFromTrack(d, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
	if err != nil {
		return nil, err
	}
	p.lastMid++
	mid := "s" + strconv.Itoa(p.lastMid)
	if err := tr.SetMid(mid); err != nil {
		return nil, fmt.Errorf("sfu: name the m-line: %w", err)
	}
	p.sfuMids[mid] = true
	p.own = append(p.own, tr)
	return tr.Sender(), nil
}

// freeTransceiver returns an m-line of the SFU's own, of kind, that a new
// down track may take, or nil. Transceivers are never removed (an m-line
// stays in every later description), so without reuse a subscriber's SDP
// would grow by one m-line per track forwarded to it for the life of its
// connection. An m-line is free when:
//   - the SFU created it (addDownTransceiver), never one of the client's;
//   - no down track occupies it (Leave's RemoveTrack cleared its sender);
//   - the SFU sends nothing on it in the last negotiated description nor in
//     an offer that is out: the round that took the old track off is
//     complete. Reused within that round, the m-line would go from the old
//     track's msid straight to the new one's, and a browser fires no
//     "track" event for a change of msid alone (only "addtrack" on
//     streams), so the new participant's video would never show;
//   - the client sends nothing on it (a browser's addTrack may take an
//     m-line the SFU created, see addDownTransceiver): it is the client's
//     then;
//   - it was not rejected (port 0).
//
// Caller holds p.mu.
func (p *Peer) freeTransceiver(kind webrtc.RTPCodecType) *webrtc.RTPTransceiver {
	if len(p.own) == 0 {
		return nil
	}
	local := parseDirections(p.pc.CurrentLocalDescription())
	remote := parseDirections(p.pc.CurrentRemoteDescription())
	pending := parseDirections(p.pc.PendingLocalDescription())
	for _, tr := range p.own {
		mid := tr.Mid()
		if tr.Kind() != kind || tr.Sender() != nil {
			continue
		}
		l, okL := local[mid]
		r, okR := remote[mid]
		if !okL || !okR || l.sends() || r.sends() || l.rejected || r.rejected {
			continue
		}
		if pl, ok := pending[mid]; ok && (pl.sends() || pl.rejected) {
			continue
		}
		return tr
	}
	return nil
}

// reuseTransceiver puts d on tr, a free m-line (freeTransceiver), with a
// new sender: pion gives it new SSRCs (media and RTX), and the next offer
// carries them with d's msid, so that the client sees a new track there.
// Caller holds p.mu.
func (p *Peer) reuseTransceiver(tr *webrtc.RTPTransceiver, d *DownTrack) (*webrtc.RTPSender, error) {
	sender, err := p.api.NewRTPSender(d, p.pc.SCTP().Transport())
	if err != nil {
		return nil, fmt.Errorf("sfu: sender for a reused m-line: %w", err)
	}
	if err := tr.SetSender(sender, d); err != nil {
		_ = sender.Stop()
		return nil, fmt.Errorf("sfu: reuse m-line %s: %w", tr.Mid(), err)
	}
	p.room.stats.reused.Add(1)
	return sender, nil
}

// mlineState is one m-line's direction in a session description, from the
// describing side's point of view.
type mlineState struct {
	dir      string // sendrecv, sendonly, recvonly or inactive
	rejected bool   // port 0
}

func (m mlineState) sends() bool { return m.dir == "sendrecv" || m.dir == "sendonly" }

// parseDirections maps each audio or video m-line's mid in desc to its
// state; nil for no description (or one that does not parse).
func parseDirections(desc *webrtc.SessionDescription) map[string]mlineState {
	if desc == nil {
		return nil
	}
	// Not desc.Unmarshal: it caches the result in desc, which pion may
	// read at the same time.
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(desc.SDP); err != nil {
		return nil
	}
	out := make(map[string]mlineState, len(parsed.MediaDescriptions))
	for _, m := range parsed.MediaDescriptions {
		mid, ok := m.Attribute("mid")
		if !ok || (m.MediaName.Media != "audio" && m.MediaName.Media != "video") {
			continue
		}
		st := mlineState{dir: "sendrecv", rejected: m.MediaName.Port.Value == 0}
		for _, a := range m.Attributes {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				st.dir = a.Key
			}
		}
		out[mid] = st
	}
	return out
}

// maxHeldCandidates bounds the client's candidates a Peer holds until a
// description (see Signal): a browser gathers a handful.
const maxHeldCandidates = 64

// Signal applies a description or candidate from the participant's client.
func (p *Peer) Signal(s Signal) error {
	if s.Description != nil {
		if err := p.onDescription(*s.Description); err != nil {
			return err
		}
		p.room.unpublishEnded(p)
	}
	if s.Candidate != nil {
		p.mu.Lock()
		// Held until the next description from the client is applied:
		// before the first, pion refuses them; while an offer of the SFU's
		// is out, they may be of the answer's ICE generation (a restart
		// offer: a client can send its new candidates before its answer),
		// which pion drops until it has that answer.
		if p.pc.RemoteDescription() == nil || p.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
			if len(p.candidates) < maxHeldCandidates {
				p.candidates = append(p.candidates, *s.Candidate)
			}
			p.mu.Unlock()
			return nil
		}
		p.mu.Unlock()
		if err := p.pc.AddICECandidate(*s.Candidate); err != nil {
			return fmt.Errorf("sfu: candidate from %s: %w", p.id, err)
		}
	}
	return nil
}

func (p *Peer) onDescription(d webrtc.SessionDescription) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch d.Type {
	case webrtc.SDPTypeOffer:
		if p.pc.SignalingState() != webrtc.SignalingStateStable {
			// Glare: the SFU is impolite and keeps its own offer; the
			// client rolls back and answers it.
			return nil
		}
		// The answer's first SetLocalDescription starts gathering.
		p.holdCandidates()
		defer p.releaseCandidates()
		if err := p.pc.SetRemoteDescription(d); err != nil {
			return fmt.Errorf("sfu: offer from %s: %w", p.id, err)
		}
		p.declineRTX()
		answer, err := p.pc.CreateAnswer(nil)
		if err != nil {
			return fmt.Errorf("sfu: answer %s: %w", p.id, err)
		}
		if err := p.pc.SetLocalDescription(answer); err != nil {
			return fmt.Errorf("sfu: answer %s: %w", p.id, err)
		}
		p.send(Signal{Description: p.pc.LocalDescription()})
	case webrtc.SDPTypeAnswer:
		if p.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
			return nil // a stale answer to an offer that glare replaced
		}
		if err := p.pc.SetRemoteDescription(d); err != nil {
			return fmt.Errorf("sfu: answer from %s: %w", p.id, err)
		}
	case webrtc.SDPTypeRollback:
		return nil
	default:
		return fmt.Errorf("sfu: description type %s from %s", d.Type, p.id)
	}
	for _, c := range p.candidates {
		if err := p.pc.AddICECandidate(c); err != nil {
			p.room.log.Debug("sfu: queued candidate", "participant", p.id, "err", err)
		}
	}
	p.candidates = nil
	if p.pending || p.restartPending {
		restart := p.restartPending
		p.pending, p.restartPending = false, false
		p.offerLocked(restart)
	}
	return nil
}

// holdCandidates keeps the SFU's ICE candidates from the client until
// releaseCandidates, which the caller calls once the description being
// made is sent (or failed). pion gathers on its own goroutines from the
// first SetLocalDescription (and from CreateOffer in an ICE restart) on,
// so without the hold a candidate could go out before the answer or
// restart offer it belongs to: a browser refuses a candidate before any
// remote description ("The remote description was null"), and takes one
// that comes before a restart offer as the old ICE generation's, where it
// is of no use.
func (p *Peer) holdCandidates() {
	p.candMu.Lock()
	p.candHold = true
	p.candMu.Unlock()
}

// releaseCandidates sends the candidates held since holdCandidates, after
// the description.
func (p *Peer) releaseCandidates() {
	p.candMu.Lock()
	defer p.candMu.Unlock()
	p.candHold = false
	for i := range p.candHeld {
		p.send(Signal{Candidate: &p.candHeld[i]})
	}
	p.candHeld = nil
}

// sendCandidate is pion's OnICECandidate: a local candidate goes to the
// client now, or after the description being made.
func (p *Peer) sendCandidate(c webrtc.ICECandidateInit) {
	p.candMu.Lock()
	defer p.candMu.Unlock()
	if p.candHold {
		p.candHeld = append(p.candHeld, c)
		return
	}
	p.send(Signal{Candidate: &c})
}

// declineRTX takes RTX off the video m-lines the client's offers created,
// so that the answer (and every later offer) declines RTX on them: a
// publisher retransmits what the SFU NACKs on the media SSRC. RTX stays on
// the m-lines the SFU creates in its offers for down tracks; a down track
// sent on a client's m-line (a WHEP viewer's, see subscribe) goes without.
// Why: a
// simulcast layer's RTX stream is undeclared in SDP, and pion maps it to its
// layer only by the repaired-rtp-stream-id extension; a sender that names it
// by the layer's rid instead (pion's own sender copies the media packet's
// extensions) makes pion re-bind the layer's track to the RTX stream while
// the SFU reads the track, a data race inside pion.
// Caller holds p.mu, right after applying the client's offer.
func (p *Peer) declineRTX() {
	for _, tr := range p.pc.GetTransceivers() {
		mid := tr.Mid()
		if tr.Kind() != webrtc.RTPCodecTypeVideo || mid == "" || p.sfuMids[mid] || p.clientMids[mid] {
			continue
		}
		p.clientMids[mid] = true
		codecs := mediaVideoCodecs()
		for i := range codecs {
			codecs[i].PayloadType = 0 // keep the client's numbers
		}
		if err := tr.SetCodecPreferences(codecs); err != nil {
			p.room.log.Warn("sfu: codec preferences", "participant", p.id, "err", err)
		}
		if s := tr.Sender(); s != nil {
			for _, d := range p.downs {
				if d.sender == s {
					d.noRTX.Store(true)
				}
			}
		}
	}
}

// negotiate sends an offer for changed tracks now, or after the answer to
// the offer that is out.
func (p *Peer) negotiate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.oneShot {
		return
	}
	if p.pc.SignalingState() != webrtc.SignalingStateStable || p.pc.RemoteDescription() == nil {
		// The client makes the first offer (with its own tracks); the
		// SFU's tracks follow in an offer right after the answer. This
		// keeps the first exchange free of glare even for clients that
		// cannot roll back (pion, WHIP encoders).
		p.pending = true
		return
	}
	p.offerLocked(false)
}

// offerLocked sends an offer, with fresh ICE credentials when restart.
// Caller holds p.mu.
func (p *Peer) offerLocked(restart bool) {
	// An ICE restart gathers anew from CreateOffer on.
	p.holdCandidates()
	defer p.releaseCandidates()
	var opts *webrtc.OfferOptions
	if restart {
		opts = &webrtc.OfferOptions{ICERestart: true}
	}
	offer, err := p.pc.CreateOffer(opts)
	if err != nil {
		p.room.log.Warn("sfu: offer", "participant", p.id, "err", err)
		return
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		p.room.log.Warn("sfu: offer", "participant", p.id, "err", err)
		return
	}
	for _, tr := range p.pc.GetTransceivers() {
		if mid := tr.Mid(); mid != "" && !p.clientMids[mid] {
			p.sfuMids[mid] = true // created by this offer (or an earlier one)
		}
	}
	if restart {
		p.room.stats.iceRestarts.Add(1)
	}
	p.send(Signal{Description: p.pc.LocalDescription(), Restart: restart})
}

// watchICE acts on the peer connection's ICE state. The server watches
// too, not only the client, because a client that does not restart (or
// whose restart offer is lost) would otherwise sit "disconnected" for
// good: on "failed", and on "disconnected" that lasts ICEGrace, the SFU
// sends an ICE-restart offer; while the state has not come back to
// "connected", it sends another after ICERetry, doubling up to 8×.
func (p *Peer) watchICE(s webrtc.ICEConnectionState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.iceState = s
	switch s {
	case webrtc.ICEConnectionStateConnected, webrtc.ICEConnectionStateCompleted:
		p.stopICETimerLocked()
		p.iceRestarts = 0
	case webrtc.ICEConnectionStateDisconnected:
		if p.iceTimer == nil {
			p.iceTimer = time.AfterFunc(p.room.sfu.cfg.ICEGrace, p.iceTimeout)
		}
	case webrtc.ICEConnectionStateFailed:
		// Not from this callback: pion calls it from its ICE agent's
		// notifier, which the restart's renegotiation may wait on.
		p.stopICETimerLocked()
		p.iceTimer = time.AfterFunc(0, p.iceTimeout)
	case webrtc.ICEConnectionStateClosed:
		p.stopICETimerLocked()
	}
}

func (p *Peer) stopICETimerLocked() {
	if p.iceTimer != nil {
		p.iceTimer.Stop()
		p.iceTimer = nil
	}
}

// iceTimeout: the grace or the retry wait ran out without a connection.
func (p *Peer) iceTimeout() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.iceTimer = nil
	switch p.iceState {
	case webrtc.ICEConnectionStateConnected, webrtc.ICEConnectionStateCompleted, webrtc.ICEConnectionStateClosed:
		p.iceRestarts = 0 // up (watchICE resets it too): a request may restart again
		return
	}
	p.restartICELocked("no connection: " + p.iceState.String())
}

// RestartICE sends the client an ICE-restart offer (signal with
// "restart": true), or after the answer to the offer that is out, and
// reports whether it did. A client asks for it with a bare restart signal;
// the SFU also does it on its own (watchICE). A request while a restart of
// the SFU's is under way (not connected since) is dropped: a second
// restart would replace the first one's ICE credentials and start its
// checks over, and with slow signaling a request sent before the client saw
// the SFU's own restart offer kept doing that; the SFU retries on its own
// while the connection stays down. Peers negotiated once over HTTP
// (WHIP/WHEP) have no channel for it and are left alone.
func (p *Peer) RestartICE() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.iceRestarts > 0 {
		p.room.log.Info("sfu: ICE restart request dropped: a restart is under way", "participant", p.id, "attempt", p.iceRestarts)
		return false
	}
	return p.restartICELocked("asked")
}

func (p *Peer) restartICELocked(reason string) bool {
	if p.closed || p.oneShot || p.pc.RemoteDescription() == nil {
		return false
	}
	p.iceRestarts++
	p.room.log.Info("sfu: ICE restart", "participant", p.id, "reason", reason, "attempt", p.iceRestarts)
	if p.pc.SignalingState() == webrtc.SignalingStateStable {
		p.offerLocked(true)
	} else {
		p.restartPending = true
	}
	// Try again if this one does not bring the connection back.
	wait := p.room.sfu.cfg.ICERetry << min(p.iceRestarts-1, 3)
	p.stopICETimerLocked()
	p.iceTimer = time.AfterFunc(wait, p.iceTimeout)
	return true
}

func (p *Peer) setREMB(bps uint64) {
	p.mu.Lock()
	p.remb, p.rembAt, p.feedback = bps, time.Now(), true
	p.mu.Unlock()
}

// Estimate is the subscriber's current downlink budget in bit/s.
func (p *Peer) Estimate() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.estimateLocked(time.Now())
}

// estimateLocked is the subscriber's downlink budget in bit/s: its own
// receive-side estimate (REMB) while it sends one, else the GCC estimate
// from its TWCC feedback, else the configured initial guess. A browser sends
// REMB only when transport-cc was not negotiated, so the two do not mix.
func (p *Peer) estimateLocked(now time.Time) uint64 {
	if p.remb > 0 && now.Sub(p.rembAt) < 5*time.Second {
		return p.remb
	}
	if p.estimator != nil {
		return uint64(p.estimator.GetTargetBitrate())
	}
	return uint64(p.room.sfu.cfg.InitialBitrate)
}

// keepSlack: a subscriber keeps its current layer while the layer's rate
// is at most this many times its budget (see allocate).
const keepSlack = 1.2

// allocate chooses the layer of each of the subscriber's video down tracks:
// audio first, then video tracks (screen shares before cameras) in turn take the highest layer whose
// measured bitrate fits what is left. Downgrades happen at once; an upgrade
// goes one layer up after the budget has held it for UpgradeHold.
func (p *Peer) allocate(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	est := int64(p.estimateLocked(now))
	budget := est
	var video []*DownTrack
	for u, d := range p.downs {
		if u.kind == webrtc.RTPCodecTypeAudio {
			_, rate := u.available()
			budget -= int64(rate[0])
			continue
		}
		video = append(video, d)
	}
	// Screen shares first: under a tight budget a shared screen (text,
	// slides) keeps its layer and the cameras take what is left.
	sort.Slice(video, func(i, j int) bool {
		if a, b := video[i].up.screen, video[j].up.screen; a != b {
			return a
		}
		return video[i].up.id < video[j].up.id
	})
	if p.lastEst > 0 && float64(est) < 0.9*float64(p.lastEst) {
		p.fellAt = now
	}
	p.lastEst = est
	hold := p.room.sfu.cfg.UpgradeHold
	var probe *DownTrack
	var probeRate int64
	for _, d := range video {
		have, rate := d.up.available()
		// The subscriber's cap for this publisher's camera (screen shares
		// are never capped).
		top := maxLayers - 1
		if !d.up.screen {
			top = p.caps[d.up.pub.id].maxLayer()
		}
		if top < 0 {
			d.upgradeSince, d.chosen = 0, false
			d.setTarget(-1)
			continue
		}
		best, lowest := -1, -1
		for l := top; l >= 0; l-- {
			if have[l] && int64(rate[l]) <= budget {
				best = l
				break
			}
		}
		for l := 0; l < maxLayers; l++ {
			if have[l] {
				lowest = l
				break
			}
		}
		if best < 0 { // nothing fits: the lowest layer there is
			best = lowest
		}
		if best < 0 {
			continue
		}
		cur := d.target()
		if best < cur && cur <= top && have[cur] && float64(rate[cur]) <= keepSlack*float64(budget) {
			// GCC answers one overuse by setting its estimate to 0.85× the
			// rate received, below the very layer being received: keep the
			// layer through one such step, drop it when the estimate falls
			// further (a real cap).
			best = cur
		}
		switch {
		case best < cur:
			d.upgradeSince = 0
			d.setTarget(best)
		case cur < 0:
			// Paused by the subscriber and now allowed again: resume at
			// once, low unless the estimate is evidence.
			d.upgradeSince = 0
			if !p.feedback {
				best = lowest
			}
			d.setTarget(best)
		case best > cur && !p.feedback:
			// No feedback from the subscriber yet: the estimate is the
			// configured guess, not evidence.
		case best > cur && d.chosen:
			// The subscriber just raised its choice: go where the
			// estimate allows without waiting out the hold.
			d.upgradeSince = 0
			d.setTarget(best)
		case best > cur:
			if d.upgradeSince == 0 {
				d.upgradeSince = now.UnixNano()
			} else if now.UnixNano()-d.upgradeSince >= int64(hold) {
				d.upgradeSince = 0
				next := cur + 1
				for next < best && !have[next] {
					next++
				}
				d.setTarget(next)
			}
		default:
			d.upgradeSince = 0
		}
		d.chosen = false
		t := d.target()
		if next := t + 1; probe == nil && t >= 0 && next <= top && next < maxLayers && have[next] && int64(rate[next]) > budget {
			// Held below a layer there is by the budget: probe for
			// the difference.
			probe, probeRate = d, int64(rate[next])-int64(rate[t])
		}
		if t >= 0 {
			budget -= int64(rate[t])
		}
	}
	// Probing: pion's GCC grows its estimate only up to 1.5× the rate it
	// sees received, so a subscriber held on a low layer by a past cap would
	// stay there. Padding on the held track shows GCC whether the next layer
	// would fit. Only a GCC estimate is probed (a browser's REMB is its own
	// business), never for 3 s after the estimate fell (the path said no),
	// and at most at half the estimate.
	fresh := p.remb > 0 && now.Sub(p.rembAt) < 5*time.Second
	if probe == nil || fresh || !p.feedback || now.Sub(p.fellAt) < probeBackoff {
		probeRate = 0
	}
	probeRate = min(probeRate, est/2)
	for _, d := range video {
		if d == probe {
			d.setProbe(probeRate)
		} else {
			d.setProbe(0)
		}
	}
}

// probeBackoff is how long a subscriber is not probed after its estimate
// fell.
const probeBackoff = 3 * time.Second

// tickLoop measures layer bitrates, re-allocates layers and ranks speakers.
func (r *Room) tickLoop() {
	tick := time.NewTicker(r.sfu.cfg.Tick)
	defer tick.Stop()
	last := time.Now()
	prev := map[*layer]uint64{}
	for {
		select {
		case <-r.done:
			return
		case now := <-tick.C:
			el := now.Sub(last).Seconds()
			last = now
			r.mu.Lock()
			tracks := append([]*upTrack(nil), r.tracks...)
			peers := make([]*Peer, 0, len(r.peers))
			for _, p := range r.peers {
				peers = append(peers, p)
			}
			r.mu.Unlock()
			seen := map[*layer]uint64{}
			for _, u := range tracks {
				for i := 0; i < maxLayers; i++ {
					if l := u.layer(i); l != nil && el > 0 {
						b := l.bytes.Load()
						// Smoothed over about four ticks: one tick holds a
						// few frames, and a keyframe more or less swings
						// it by half.
						now := float64(b-prev[l]) * 8 / el
						if old := float64(l.bitrate.Load()); old > 0 {
							now = (3*old + now) / 4
						}
						l.bitrate.Store(uint64(now))
						seen[l] = b
					}
				}
			}
			prev = seen
			for _, p := range peers {
				p.allocate(now)
			}
			r.rankSpeakers(tracks)
		}
	}
}

// rankSpeakers smooths each publisher's audio level over two ticks and
// reports the ones above the threshold, loudest first, when the list changes.
func (r *Room) rankSpeakers(tracks []*upTrack) {
	r.mu.Lock()
	for _, u := range tracks {
		if u.kind != webrtc.RTPCodecTypeAudio {
			continue
		}
		v, ok := u.levelTick()
		if !ok {
			v = 0
		}
		r.loudness[u.pub.id] = (r.loudness[u.pub.id] + v) / 2
	}
	var list []Speaker
	for id, v := range r.loudness {
		if v >= speakerThreshold {
			list = append(list, Speaker{ID: id, Level: v / 127})
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Level != list[j].Level {
			return list[i].Level > list[j].Level
		}
		return list[i].ID < list[j].ID
	})
	changed := len(list) != len(r.speakers)
	for i := 0; !changed && i < len(list); i++ {
		changed = list[i].ID != r.speakers[i].ID
	}
	if changed {
		r.speakers = list
	}
	cb := r.cfg.OnSpeakers
	r.mu.Unlock()
	if changed && cb != nil {
		cb(list)
	}
}
