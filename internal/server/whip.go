package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/rtc/sfu"
	"github.com/sori-dev/sori/internal/store"
)

// Live streaming over HTTP (docs/calls.md, "WHIP and WHEP"): WHIP ingest
// (RFC 9725) at POST /rtc/whip/{room} and WHEP playback at
// POST /rtc/whep/{room}. Each POST carries an SDP offer and a connection
// token of a member of chat room {room}, and answers 201 with the complete
// SDP answer and the resource's Location; PATCH adds trickled candidates,
// DELETE ends it. Stream rooms are the SFU's, apart from the room's call.

const (
	// whipPerUser bounds the WHIP and WHEP resources one user holds.
	whipPerUser = 10
	// whipMaxSDP bounds an offer or a trickle body.
	whipMaxSDP = 64 << 10
)

type whipService struct {
	srv   *Server
	sfu   *sfu.SFU
	store store.Store // stream keys (whip_keys.go)

	keysMu sync.Mutex // serializes changes to the stored stream keys

	mu        sync.Mutex
	rooms     map[string]*sfu.Room
	resources map[string]*whipResource // by id
	perUser   map[string]int
}

type whipResource struct {
	id, room, user string
	peer           *sfu.Peer
}

func (s *Server) mountWHIP(m *sfu.SFU) {
	w := &whipService{srv: s, sfu: m, store: s.store, rooms: map[string]*sfu.Room{}, resources: map[string]*whipResource{}, perUser: map[string]int{}}
	if s.accounts != nil && s.store != nil && s.chat != nil {
		w.keyRoutes(s.accounts)
	}
	for _, kind := range []string{"whip", "whep"} {
		s.mux.HandleFunc("POST /rtc/"+kind+"/{room}", func(rw http.ResponseWriter, r *http.Request) { w.post(rw, r, kind) })
		s.mux.HandleFunc("PATCH /rtc/"+kind+"/{room}/{id}", w.patch)
		s.mux.HandleFunc("DELETE /rtc/"+kind+"/{room}/{id}", w.delete)
		s.mux.HandleFunc("OPTIONS /rtc/"+kind+"/{room}", w.options)
		s.mux.HandleFunc("OPTIONS /rtc/"+kind+"/{room}/{id}", w.options)
	}
}

// cors lets a page of any origin use the endpoints: they are authorized by
// a bearer token, never by cookies.
func cors(rw http.ResponseWriter) {
	h := rw.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Location, ETag, Link")
}

func (w *whipService) options(rw http.ResponseWriter, _ *http.Request) {
	cors(rw)
	h := rw.Header()
	h.Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	h.Set("Access-Control-Max-Age", "86400")
	rw.WriteHeader(http.StatusNoContent)
}

// bearerStreamKey returns the stream key a request carries as its bearer
// token, if it carries one.
func bearerStreamKey(r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !strings.HasPrefix(tok, streamKeyPrefix) {
		return "", false
	}
	return tok, true
}

// keyUser checks the stream key of a request for room and returns the
// owner name of the resources made with it.
func (w *whipService) keyUser(rw http.ResponseWriter, r *http.Request, room, key string) (string, bool) {
	id, err := w.checkStreamKey(r.Context(), room, key)
	if err != nil {
		perr := httpx.ProtocolError(err)
		if perr == nil {
			w.srv.log.Error("whip: stream key check", "room", room, "err", err)
			httpx.WriteError(rw, protocol.ErrInternal)
			return "", false
		}
		writeBearerError(rw, perr)
		return "", false
	}
	return streamKeyUser(id), true
}

// authorize returns who may use room's streams: the token's user (a
// member of the room), or, for WHIP ingest, a stream key of the room.
func (w *whipService) authorize(rw http.ResponseWriter, r *http.Request, room, kind string) (string, bool) {
	if key, ok := bearerStreamKey(r); ok && w.store != nil {
		if kind != "whip" {
			rw.Header().Set("WWW-Authenticate", `Bearer realm="sori"`)
			httpx.WriteErrorStatus(rw, http.StatusUnauthorized, errStreamKeyWHEP)
			return "", false
		}
		return w.keyUser(rw, r, room, key)
	}
	claims, perr := w.srv.bearerClaims(r)
	if perr != nil {
		writeBearerError(rw, perr)
		return "", false
	}
	ok, err := chatMembership{w.srv.node}.IsMember(r.Context(), claims.User(), room)
	if err != nil {
		w.srv.log.Error("whip: membership check", "room", room, "err", err)
		httpx.WriteError(rw, protocol.ErrInternal)
		return "", false
	}
	if !ok {
		httpx.WriteError(rw, protocol.ErrPermissionDenied.WithMessage("not a member of this room"))
		return "", false
	}
	return claims.User(), true
}

func (w *whipService) post(rw http.ResponseWriter, r *http.Request, kind string) {
	cors(rw)
	room := r.PathValue("room")
	if !validStreamRoom(room) {
		httpx.WriteError(rw, protocol.ErrBadRequest.WithMessage("room must be 1-64 letters, digits, '_', '-' or '.'"))
		return
	}
	user, ok := w.authorize(rw, r, room, kind)
	if !ok {
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/sdp" {
		httpx.WriteErrorStatus(rw, http.StatusUnsupportedMediaType, protocol.ErrBadRequest.WithMessage("Content-Type must be application/sdp"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, whipMaxSDP+1))
	if err != nil || len(body) == 0 || len(body) > whipMaxSDP {
		httpx.WriteError(rw, protocol.ErrBadRequest.WithMessage("the body must be an SDP offer of at most 64 KiB"))
		return
	}
	id, err := whipID()
	if err != nil {
		httpx.WriteError(rw, protocol.ErrInternal)
		return
	}
	w.mu.Lock()
	if w.perUser[user] >= whipPerUser {
		w.mu.Unlock()
		httpx.WriteErrorStatus(rw, http.StatusTooManyRequests, protocol.ErrConflict.WithMessage(
			fmt.Sprintf("at most %d WHIP/WHEP sessions per user", whipPerUser)))
		return
	}
	w.perUser[user]++
	sr := w.rooms[room]
	if sr == nil {
		if sr, err = w.sfu.NewRoom(sfu.RoomConfig{}); err != nil {
			w.perUser[user]--
			w.mu.Unlock()
			httpx.WriteError(rw, protocol.ErrUnavailable.WithMessage("the SFU is shutting down"))
			return
		}
		w.rooms[room] = sr
	}
	if kind == "whep" && sr.Tracks() == 0 {
		// A viewer gets the tracks there are when it joins (one
		// negotiation): with none, it would watch nothing forever.
		if w.perUser[user]--; w.perUser[user] <= 0 {
			delete(w.perUser, user)
		}
		w.mu.Unlock()
		httpx.WriteError(rw, protocol.ErrNotFound.WithMessage("nothing is published in this room yet; try again"))
		return
	}
	res := &whipResource{id: id, room: room, user: user}
	w.resources[id] = res // reserved, so that the room is not closed under us
	w.mu.Unlock()

	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	peer, answer, err := sr.JoinOneShot(ctx, kind+"-"+id, webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(body)})
	if err != nil {
		w.release(res)
		httpx.WriteErrorStatus(rw, http.StatusBadRequest, protocol.ErrBadRequest.WithMessage("the offer cannot be answered: "+err.Error()))
		return
	}
	w.mu.Lock()
	res.peer = peer
	w.mu.Unlock()
	go func() {
		<-peer.Done()
		w.release(res)
	}()
	rw.Header().Set("Content-Type", "application/sdp")
	rw.Header().Set("Location", "/rtc/"+kind+"/"+room+"/"+id)
	rw.Header().Set("ETag", `"`+id+`"`)
	rw.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(rw, answer.SDP)
}

// release ends a resource once: its participant leaves the stream room,
// and the room closes when nobody is left.
func (w *whipService) release(res *whipResource) {
	w.mu.Lock()
	if w.resources[res.id] != res {
		w.mu.Unlock()
		return
	}
	delete(w.resources, res.id)
	if w.perUser[res.user]--; w.perUser[res.user] <= 0 {
		delete(w.perUser, res.user)
	}
	sr, peer := w.rooms[res.room], res.peer
	still := false
	for _, o := range w.resources {
		if o.room == res.room {
			still = true
		}
	}
	if !still {
		delete(w.rooms, res.room)
	}
	w.mu.Unlock()
	if sr == nil {
		return
	}
	if peer != nil {
		sr.Leave(peer.ID())
	}
	if !still {
		sr.Close()
	}
}

// lookup finds the resource of a PATCH or DELETE and checks that the token
// is its owner's.
func (w *whipService) lookup(rw http.ResponseWriter, r *http.Request) *whipResource {
	cors(rw)
	var user string
	if key, ok := bearerStreamKey(r); ok && w.store != nil {
		if user, ok = w.keyUser(rw, r, r.PathValue("room"), key); !ok {
			return nil
		}
	} else {
		claims, perr := w.srv.bearerClaims(r)
		if perr != nil {
			writeBearerError(rw, perr)
			return nil
		}
		user = claims.User()
	}
	w.mu.Lock()
	res := w.resources[r.PathValue("id")]
	w.mu.Unlock()
	if res == nil || res.room != r.PathValue("room") || res.user != user || res.peer == nil {
		httpx.WriteError(rw, protocol.ErrNotFound.WithMessage("no such WHIP/WHEP session"))
		return nil
	}
	return res
}

func (w *whipService) delete(rw http.ResponseWriter, r *http.Request) {
	if res := w.lookup(rw, r); res != nil {
		w.release(res)
		rw.WriteHeader(http.StatusOK)
	}
}

// patch adds trickled ICE candidates (application/trickle-ice-sdpfrag,
// RFC 8840). An ICE restart through PATCH is not supported: start a new
// session instead.
func (w *whipService) patch(rw http.ResponseWriter, r *http.Request) {
	res := w.lookup(rw, r)
	if res == nil {
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/trickle-ice-sdpfrag" {
		httpx.WriteErrorStatus(rw, http.StatusUnsupportedMediaType, protocol.ErrBadRequest.WithMessage("Content-Type must be application/trickle-ice-sdpfrag"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, whipMaxSDP+1))
	if err != nil || len(body) > whipMaxSDP {
		httpx.WriteError(rw, protocol.ErrBadRequest.WithMessage("the body must be an SDP fragment of at most 64 KiB"))
		return
	}
	var mid string
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "a=mid:"):
			mid = strings.TrimPrefix(line, "a=mid:")
		case strings.HasPrefix(line, "a=candidate:"):
			m := mid
			if err := res.peer.AddCandidate(webrtc.ICECandidateInit{Candidate: strings.TrimPrefix(line, "a="), SDPMid: &m}); err != nil {
				httpx.WriteError(rw, protocol.ErrBadRequest.WithMessage("bad candidate: "+err.Error()))
				return
			}
		}
	}
	rw.WriteHeader(http.StatusNoContent)
}

func validStreamRoom(r string) bool {
	if len(r) == 0 || len(r) > 64 {
		return false
	}
	for _, c := range r {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func whipID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("whip: resource id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
