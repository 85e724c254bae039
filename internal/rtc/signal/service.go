package signal

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
)

// Conn is a client connection that takes part in calls; *session.Session is
// one. Send must not block and must not call back into the Service.
type Conn interface {
	ID() string
	User() string
	Send(frame []byte)
}

// Membership decides who may join a room's call. The chat service's room
// membership is the usual implementation.
type Membership interface {
	IsMember(ctx context.Context, user, room string) (bool, error)
}

// DefaultMeshLimit is the most participants of a mesh call by default: each
// sends its media to every other, so the uplink grows with the call.
const DefaultMeshLimit = 4

// Config configures a Service.
type Config struct {
	// Membership is required.
	Membership Membership
	// ICEServers returns the ICE servers (with fresh TURN credentials) for a
	// user; nil means none, so peers use host candidates only.
	ICEServers func(user string) []ICEServer
	// MeshLimit is the most participants of a mesh call; default
	// DefaultMeshLimit. With a Media, the join beyond it moves the call to
	// the SFU; without one it fails with 119.
	MeshLimit int
	// Media is the SFU; nil keeps every call a mesh.
	Media Media
	// SFULimit is the most participants of a call on the SFU; default
	// DefaultSFULimit.
	SFULimit int
	// Hosts tells whether user may host a broadcast call in room (start
	// one, and publish in it); nil: nobody. Called without the lock.
	Hosts func(ctx context.Context, user, room string) (bool, error)
	// BroadcastLimit is the most participants of a broadcast call;
	// default DefaultBroadcastLimit.
	BroadcastLimit int
	// MeshReturn is how long a call on the SFU must have at most
	// MeshLimit-1 participants before it returns to mesh; default
	// DefaultMeshReturn.
	MeshReturn time.Duration
	// AfterFunc schedules the return to mesh; default time.AfterFunc.
	// Tests inject their own clock here.
	AfterFunc func(d time.Duration, f func()) Timer
	// Notifier receives call-state changes for those not in the call
	// (notify.go); nil = none.
	Notifier Notifier
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
}

// Service holds the calls of one server. It is safe for concurrent use.
//
// Lock order: Service.mu, then whatever Conn.Send takes (the session's queue
// lock). Pushes are sent with mu held, so that every participant receives the
// events of a room in the order they happened. Membership and ICEServers are
// called without mu.
type Service struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	rooms map[Room]*room
	conns map[Conn]map[Room]*participant
	// removals counts RemoveUser calls, so that a Join whose membership
	// check raced a removal checks again (see Join).
	removals uint64
	notes    *notes // nil without a Notifier
}

type room struct {
	name    Room
	joins   uint64 // join counter: orders participants for perfect negotiation
	members map[string]*participant
	mode    Mode
	media   MediaRoom // in ModeSFU
	back    Timer     // pending return to mesh
	backGen uint64    // which scheduled return is current
	noted   string    // the last call state queued for the Notifier (JSON)
	// broadcast: only hosts publish; viewers hear only of hosts, hosts of
	// everyone; always on the SFU.
	broadcast bool
}

// sees tells whether o is told about p (joins, leaves, state).
func (r *room) sees(o, p *participant) bool {
	return !r.broadcast || p.role != RoleViewer || o.role != RoleViewer
}

type participant struct {
	id    string
	user  string
	conn  Conn
	order uint64
	state State
	role  string      // RoleHost or RoleViewer in a broadcast call
	gone  atomic.Bool // left the call: the SFU's late signals are dropped
}

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Membership == nil {
		return nil, errors.New("signal: a Membership is required")
	}
	if cfg.MeshLimit <= 0 {
		cfg.MeshLimit = DefaultMeshLimit
	}
	if cfg.SFULimit <= 0 {
		cfg.SFULimit = DefaultSFULimit
	}
	if cfg.BroadcastLimit <= 0 {
		cfg.BroadcastLimit = DefaultBroadcastLimit
	}
	if cfg.SFULimit < cfg.MeshLimit {
		cfg.SFULimit = cfg.MeshLimit
	}
	if cfg.MeshReturn <= 0 {
		cfg.MeshReturn = DefaultMeshReturn
	}
	if cfg.AfterFunc == nil {
		cfg.AfterFunc = realAfterFunc
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, log: cfg.Logger, rooms: map[Room]*room{}, conns: map[Conn]map[Room]*participant{}}
	if cfg.Notifier != nil {
		s.notes = &notes{to: cfg.Notifier}
	}
	return s, nil
}

// Errors of call methods, as numbered protocol errors.
var (
	errAnonymous   = protocol.ErrPermissionDenied.WithMessage("calls need a logged-in user")
	errNotMember   = protocol.ErrPermissionDenied.WithMessage("not a member of this room")
	errBadRoom     = protocol.ErrBadRequest.WithMessage("room must be 1-64 letters, digits, '_', '-' or '.'")
	errNotInCall   = protocol.ErrNotFound.WithMessage("you are not in this call")
	errNoPeer      = protocol.ErrNotFound.WithMessage("no such participant in this call")
	errJoinedTwice = protocol.ErrConflict.WithMessage("this connection is already in this call")
	errBadReplaces = protocol.ErrBadRequest.WithMessage("replaces must be a participant id")
	errNotHost     = protocol.ErrPermissionDenied.WithMessage("only the room's owners and admins may start a broadcast")
	errNoBroadcast = protocol.ErrBadRequest.WithMessage("broadcast calls need the SFU (--sfu-listen)")
	errCallRunning = protocol.ErrConflict.WithMessage("a call that is not a broadcast is running in this room")
	errQualityMesh = protocol.ErrNeedsSFU.WithMessage("call.quality needs a call on the SFU: in a mesh call each sender chooses what it sends")
	errBadLayer    = protocol.ErrBadRequest.WithMessage("layer must be one of auto, high, mid, low, off")
	errQualitySelf = protocol.ErrBadRequest.WithMessage("peer must be another participant of the call")
)

// view describes p to a receiver whose join order is viewer.
func (p *participant) view(viewer uint64) Participant {
	return Participant{ID: p.id, User: p.user, Polite: viewer < p.order, State: p.state, Role: p.role}
}

// Join adds c to req.Room's call and tells the others. The result lists the
// participants already there; pushes about the room may reach c before the
// result does, and are all newer than it.
//
// req.Replaces names a participant of an earlier join by the same user (the
// connection it joined on may be dead without the server knowing yet): it is
// removed first, with reason "replaced", so that its place in the mesh is
// free. A Replaces that names nobody, or another user's participant, is
// ignored, so that a client can always pass its last participant id.
func (s *Service) Join(ctx context.Context, c Conn, req JoinRequest) (JoinResult, error) {
	user := c.User()
	if user == "" {
		return JoinResult{}, errAnonymous
	}
	if !validRoom(req.Room) {
		return JoinResult{}, errBadRoom
	}
	if len(req.Replaces) > 64 {
		return JoinResult{}, errBadReplaces
	}
	var ice []ICEServer
	if s.cfg.ICEServers != nil {
		ice = s.cfg.ICEServers(user)
	}
	if ice == nil {
		ice = []ICEServer{}
	}
	id, err := newID()
	if err != nil {
		return JoinResult{}, err
	}
	host := false
	if s.cfg.Hosts != nil && s.cfg.Media != nil {
		ok, err := s.cfg.Hosts(ctx, user, string(req.Room))
		if err != nil {
			return JoinResult{}, fmt.Errorf("signal: hosts of %s: %w", req.Room, err)
		}
		host = ok
	}
	if err := s.lockMember(ctx, user, req.Room); err != nil {
		return JoinResult{}, err
	}
	defer s.mu.Unlock()
	if cur := s.conns[c][req.Room]; cur != nil && cur.id != req.Replaces {
		return JoinResult{}, errJoinedTwice
	}
	replaced := false
	if old := s.rooms[req.Room].lookup(req.Replaces); old != nil && old.user == user {
		s.removeLocked(req.Room, ReasonReplaced, old)
		replaced = true
	}
	r := s.rooms[req.Room]
	startedBy := "" // a new call rings (notify.go); a replacing join is no new call
	if req.Broadcast && r == nil {
		switch {
		case s.cfg.Media == nil:
			return JoinResult{}, errNoBroadcast
		case !host:
			return JoinResult{}, errNotHost
		}
		r = &room{name: req.Room, members: map[string]*participant{}, mode: ModeMesh, broadcast: true}
		if err := s.toSFU(r); err != nil {
			return JoinResult{}, err
		}
		s.rooms[req.Room] = r
		startedBy = user
	}
	if req.Broadcast && !r.broadcast {
		return JoinResult{}, errCallRunning
	}
	if r == nil {
		r = &room{name: req.Room, members: map[string]*participant{}, mode: ModeMesh}
		s.rooms[req.Room] = r
		if !replaced {
			startedBy = user
		}
	}
	if len(r.members) >= s.limit(r) {
		if r.mode != ModeMesh || s.cfg.Media == nil || len(r.members) >= s.cfg.SFULimit {
			if len(r.members) == 0 {
				delete(s.rooms, req.Room)
			}
			return JoinResult{}, protocol.ErrCallFull.WithMessage(
				fmt.Sprintf("the call has reached its limit of %d participants", s.limit(r)))
		}
		if err := s.toSFU(r); err != nil {
			return JoinResult{}, err
		}
	}
	r.joins++
	p := &participant{id: id, user: user, conn: c, order: r.joins}
	if req.State != nil {
		p.state = *req.State
	}
	if r.broadcast {
		p.role = RoleViewer
		if host {
			p.role = RoleHost
		}
	}
	if r.mode == ModeSFU {
		join := r.media.Join
		if p.role == RoleViewer {
			vr, ok := r.media.(ViewerRoom)
			if !ok {
				return JoinResult{}, errNoBroadcast
			}
			join = vr.JoinViewer
		}
		if err := join(id, s.mediaSend(r.name, p)); err != nil {
			if len(r.members) == 0 {
				s.dropEmpty(r)
			}
			return JoinResult{}, fmt.Errorf("signal: join %s to the SFU: %w", r.name, err)
		}
		if len(r.members)+1 > s.cfg.MeshLimit-1 {
			s.stopReturn(r)
		}
	}
	others := r.sorted()
	res := JoinResult{Room: r.name, Participant: id, Mode: r.mode, Limit: s.limit(r),
		Participants: make([]Participant, 0, len(others)), ICEServers: ice, Broadcast: r.broadcast, Role: p.role}
	for _, o := range others {
		if r.sees(p, o) {
			res.Participants = append(res.Participants, o.view(p.order))
		}
		if r.sees(o, p) {
			o.conn.Send(encode(Push{Room: r.name, Event: EventJoined, Participant: ptr(p.view(o.order))}))
		}
	}
	r.members[id] = p
	if s.conns[c] == nil {
		s.conns[c] = map[Room]*participant{}
	}
	s.conns[c][r.name] = p
	s.noteLocked(r, startedBy)
	s.log.Debug("call join", "room", string(r.name), "user", user, "conn", c.ID(), "participant", id, "participants", len(r.members))
	return res, nil
}

// lockMember checks that user is a member of room and returns with s.mu
// held. Membership is asked without the lock; if a RemoveUser ran meanwhile
// (a kick that this check may have missed), it asks again, so that a removed
// member can never slip into a call after RemoveUser emptied it of them.
func (s *Service) lockMember(ctx context.Context, user string, room Room) error {
	for {
		s.mu.Lock()
		seen := s.removals
		s.mu.Unlock()
		ok, err := s.cfg.Membership.IsMember(ctx, user, string(room))
		if err != nil {
			return fmt.Errorf("signal: check membership of room %s: %w", room, err)
		}
		if !ok {
			return errNotMember
		}
		s.mu.Lock()
		if s.removals == seen {
			return nil
		}
		s.mu.Unlock()
	}
}

// RemoveUser removes every participant of user from room's call, with reason
// (ReasonKicked or ReasonLeftRoom), and returns how many there were. The
// server calls it when user stops being a member of the chat room, after the
// membership change is stored, so that a Join can no longer let them in.
func (s *Service) RemoveUser(room Room, user, reason string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removals++
	r := s.rooms[room]
	if r == nil {
		return 0
	}
	var gone []*participant
	for _, p := range r.sorted() {
		if p.user == user {
			gone = append(gone, p)
		}
	}
	if len(gone) > 0 {
		s.removeLocked(room, reason, gone...)
	}
	return len(gone)
}

// Leave removes c from req.Room's call and tells the others.
func (s *Service) Leave(c Conn, req LeaveRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.conns[c][req.Room]
	if p == nil {
		return errNotInCall
	}
	s.removeLocked(req.Room, ReasonLeft, p)
	return nil
}

// Disconnected removes c from every call it is in; the server calls it when
// the connection is gone.
func (s *Service) Disconnected(c Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, p := range s.conns[c] {
		s.removeLocked(name, ReasonDisconnected, p)
	}
}

// removeLocked removes participants of one room, all before it tells anyone,
// so that none of them hears of another's removal.
func (s *Service) removeLocked(name Room, reason string, ps ...*participant) {
	r := s.rooms[name]
	for _, p := range ps {
		delete(r.members, p.id)
		if set := s.conns[p.conn]; set != nil {
			delete(set, name)
			if len(set) == 0 {
				delete(s.conns, p.conn)
			}
		}
	}
	for _, p := range ps {
		p.gone.Store(true)
		if r.media != nil {
			r.media.Leave(p.id)
		}
	}
	if len(r.members) == 0 {
		s.dropEmpty(r)
	} else if r.mode == ModeSFU && !r.broadcast && len(r.members) <= s.cfg.MeshLimit-1 && r.back == nil {
		r.backGen++
		gen := r.backGen
		r.back = s.cfg.AfterFunc(s.cfg.MeshReturn, func() { s.returnToMesh(r, gen) })
	}
	rest := r.sorted()
	for _, p := range ps {
		for _, o := range rest {
			if !r.sees(o, p) {
				continue
			}
			o.conn.Send(encode(Push{Room: name, Event: EventLeft, Participant: ptr(p.view(o.order)), Reason: reason}))
		}
		if reason != ReasonLeft && reason != ReasonDisconnected {
			// Removed by the server: tell the participant too (its own id in
			// a left push), in case its connection is still alive.
			p.conn.Send(encode(Push{Room: name, Event: EventLeft, Participant: ptr(p.view(p.order)), Reason: reason}))
		}
		s.log.Debug("call leave", "room", string(name), "user", p.user, "conn", p.conn.ID(), "participant", p.id, "reason", reason)
	}
	if reason != ReasonReplaced { // the replacing join notes the state
		s.noteLocked(r, "")
	}
}

// Signal relays a description, candidate or restart request from c to one
// participant of the same call, or to the SFU ("to":"sfu") in SFU mode.
func (s *Service) Signal(c Conn, req SignalRequest) error {
	if err := checkSignal(&req); err != nil {
		return err
	}
	s.mu.Lock()
	from := s.conns[c][req.Room]
	if from == nil {
		s.mu.Unlock()
		return errNotInCall
	}
	if req.To == SFUPeer {
		media := s.rooms[req.Room].media
		s.mu.Unlock()
		if media == nil {
			return errNoPeer
		}
		if req.Description == nil && req.Candidate == nil {
			// A bare restart request: the SFU offers with fresh ICE
			// credentials.
			if rr, ok := media.(RestartRoom); ok {
				if err := rr.RestartICE(from.id); err != nil {
					return protocol.ErrBadRequest.WithMessage("the SFU refused the restart: " + err.Error())
				}
			}
			return nil
		}
		if err := media.Signal(from.id, req.Description, req.Candidate); err != nil {
			return protocol.ErrBadRequest.WithMessage("the SFU refused the signal: " + err.Error())
		}
		return nil
	}
	defer s.mu.Unlock()
	r := s.rooms[req.Room]
	to := r.members[req.To]
	if to == nil || to == from || r.mode == ModeSFU {
		// In SFU mode media goes through "sfu" only: a signal left over
		// from the mesh must not reach a participant.
		return errNoPeer
	}
	to.conn.Send(encode(Push{Room: req.Room, Event: EventSignal, From: from.id,
		Description: req.Description, Candidate: req.Candidate, Restart: req.Restart}))
	return nil
}

// SetQuality applies c's choice of how much of another participant's
// camera video it receives (call.quality); only an SFU call can honour it.
func (s *Service) SetQuality(c Conn, req QualityRequest) error {
	valid := false
	for _, q := range Qualities {
		valid = valid || req.Layer == q
	}
	if !valid {
		return errBadLayer
	}
	s.mu.Lock()
	from := s.conns[c][req.Room]
	if from == nil {
		s.mu.Unlock()
		return errNotInCall
	}
	r := s.rooms[req.Room]
	to := r.members[req.Peer]
	media := r.media
	s.mu.Unlock()
	switch {
	case to == from:
		return errQualitySelf
	case to == nil || !r.sees(from, to):
		return errNoPeer
	case media == nil:
		return errQualityMesh
	}
	qr, ok := media.(QualityRoom)
	if !ok {
		return errQualityMesh
	}
	if err := qr.SetQuality(from.id, to.id, req.Layer); err != nil {
		// The caller or the peer left the SFU since the lookup above.
		return errNoPeer.WithMessage("no such participant on the SFU: " + err.Error())
	}
	return nil
}

// SetState updates c's media state in req.Room's call and tells the others.
func (s *Service) SetState(c Conn, req StateRequest) (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.conns[c][req.Room]
	if p == nil {
		return State{}, errNotInCall
	}
	set := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	set(&p.state.Muted, req.Muted)
	set(&p.state.Camera, req.Camera)
	set(&p.state.Screen, req.Screen)
	r := s.rooms[req.Room]
	for _, o := range r.sorted() {
		if o != p && r.sees(o, p) {
			o.conn.Send(encode(Push{Room: req.Room, Event: EventState, Participant: ptr(p.view(o.order))}))
		}
	}
	return p.state, nil
}

// dropEmpty forgets a room without participants and ends its media.
func (s *Service) dropEmpty(r *room) {
	if s.rooms[r.name] == r {
		delete(s.rooms, r.name)
	}
	s.stopReturn(r)
	if r.media != nil {
		r.media.Close()
		r.media = nil
	}
}

// limit is the most participants r takes in its current mode.
func (s *Service) limit(r *room) int {
	if r.broadcast {
		return s.cfg.BroadcastLimit
	}
	if r.mode == ModeSFU {
		return s.cfg.SFULimit
	}
	return s.cfg.MeshLimit
}

// toSFU moves a mesh call to the SFU: a media room with every participant
// in it, and a "mode" push telling each to close its mesh connections and
// connect to "sfu".
func (s *Service) toSFU(r *room) error {
	media, err := s.cfg.Media.NewRoom(r.name, func(list []Speaker) { s.pushSpeakers(r, list) })
	if err != nil {
		return fmt.Errorf("signal: SFU room for %s: %w", r.name, err)
	}
	members := r.sorted()
	for _, p := range members {
		if err := media.Join(p.id, s.mediaSend(r.name, p)); err != nil {
			media.Close()
			return fmt.Errorf("signal: join %s to the SFU: %w", r.name, err)
		}
	}
	r.mode, r.media = ModeSFU, media
	for _, p := range members {
		p.conn.Send(encode(Push{Room: r.name, Event: EventMode, Mode: ModeSFU}))
	}
	s.log.Info("call moved to the SFU", "room", string(r.name), "participants", len(members)+1)
	return nil
}

// returnToMesh ends the SFU side of a call that stayed at most MeshLimit-1
// participants for MeshReturn (gen names the scheduled return; a later one
// or a cancel makes this one stale).
func (s *Service) returnToMesh(r *room, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.backGen != gen || r.back == nil || s.rooms[r.name] != r || r.mode != ModeSFU {
		return
	}
	r.back = nil
	if len(r.members) > s.cfg.MeshLimit-1 {
		return
	}
	r.mode = ModeMesh
	r.media.Close()
	r.media = nil
	for _, p := range r.sorted() {
		p.conn.Send(encode(Push{Room: r.name, Event: EventMode, Mode: ModeMesh}))
	}
	s.noteLocked(r, "")
	s.log.Info("call back to mesh", "room", string(r.name), "participants", len(r.members))
}

func (s *Service) stopReturn(r *room) {
	if r.back != nil {
		r.back.Stop()
		r.back = nil
		r.backGen++
	}
}

// mediaSend returns the function that passes the SFU's signals for p to its
// connection, as signal pushes from "sfu". It takes no lock (the SFU may
// call it while the Service holds mu).
func (s *Service) mediaSend(room Room, p *participant) func(description, candidate json.RawMessage, restart bool) {
	return func(description, candidate json.RawMessage, restart bool) {
		if p.gone.Load() {
			return
		}
		p.conn.Send(encode(Push{Room: room, Event: EventSignal, From: SFUPeer, Description: description, Candidate: candidate, Restart: restart}))
	}
}

// pushSpeakers sends the SFU's active-speaker list to every participant.
func (s *Service) pushSpeakers(r *room, list []Speaker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[r.name] != r || r.mode != ModeSFU {
		return
	}
	if list == nil {
		list = []Speaker{}
	}
	frame := encode(Push{Room: r.name, Event: EventSpeakers, Speakers: &list})
	for _, p := range r.sorted() {
		p.conn.Send(frame)
	}
}

// lookup returns the participant id of r, or nil; r may be nil.
func (r *room) lookup(id string) *participant {
	if r == nil || id == "" {
		return nil
	}
	return r.members[id]
}

// sorted returns the room's participants in join order.
func (r *room) sorted() []*participant {
	out := make([]*participant, 0, len(r.members))
	for _, p := range r.members {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].order < out[j].order })
	return out
}

// description is the part of an RTCSessionDescriptionInit that is checked.
type description struct {
	Type string  `json:"type"`
	SDP  *string `json:"sdp"`
}

// candidate is the part of an RTCIceCandidateInit that is checked.
type candidate struct {
	Candidate *string `json:"candidate"`
}

func checkSignal(req *SignalRequest) error {
	if req.To == "" {
		return protocol.ErrBadRequest.WithMessage("to (a participant id) is required")
	}
	if isNull(req.Description) {
		req.Description = nil
	}
	if isNull(req.Candidate) {
		req.Candidate = nil
	}
	if req.Description == nil && req.Candidate == nil && !req.Restart {
		return protocol.ErrBadRequest.WithMessage("a signal needs a description, a candidate or restart")
	}
	if req.Description != nil {
		var d description
		if err := json.Unmarshal(req.Description, &d); err != nil {
			return protocol.ErrBadRequest.WithMessage("description must be an RTCSessionDescriptionInit object")
		}
		switch d.Type {
		case "offer", "answer", "pranswer":
			if d.SDP == nil || *d.SDP == "" {
				return protocol.ErrBadRequest.WithMessage("an " + d.Type + " needs its sdp")
			}
		case "rollback":
		default:
			return protocol.ErrBadRequest.WithMessage("description type must be offer, answer, pranswer or rollback")
		}
	}
	if req.Candidate != nil {
		var ca candidate
		if err := json.Unmarshal(req.Candidate, &ca); err != nil || ca.Candidate == nil {
			return protocol.ErrBadRequest.WithMessage("candidate must be an RTCIceCandidateInit object")
		}
	}
	return nil
}

func isNull(b json.RawMessage) bool { return len(b) == 0 || string(b) == "null" }

// encode renders a push. Every field is plain data, so Marshal cannot fail.
func encode(p Push) []byte {
	p.Push = "call"
	b, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("signal: encode push: %v", err))
	}
	return b
}

func ptr[T any](v T) *T { return &v }

func newID() (string, error) {
	var b [9]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("signal: participant id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
