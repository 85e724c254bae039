// Package rest is the chat REST API under /api/v1 (docs/api.md): rooms,
// membership, messages, receipts, typing, presence, search and files, on top
// of the chat service, with every request authenticated by accounts. It must
// never import session, transport or server.
package rest

import (
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/sori-dev/sori/internal/accounts"
	"github.com/sori-dev/sori/internal/chat"
	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/ratelimit"
	"github.com/sori-dev/sori/internal/store"
)

// Config configures the API. Chat and Accounts are required.
type Config struct {
	Chat     *chat.Service
	Accounts *accounts.Service
	Log      *slog.Logger // nil = discard
	// Typing and Read limit each user's typing indicators and read receipts
	// sent over REST, which fan out on the room's live channel to every
	// member; nil = 2 a second (4 at once) and 5 a second (10 at once).
	// Their rpc forms over a connection are under the command rate instead.
	Typing, Read *ratelimit.Limiter
	// Upload limits each user's file uploads; nil = 30 a minute, 10 at
	// once. The bytes are bounded by the chat service's quota.
	Upload *ratelimit.Limiter
	// Writes limits each user's changing requests (every method but GET
	// and HEAD: posts, edits, reactions, pins, rooms, invitations …),
	// which over a real-time connection are under the command rate; nil
	// = DefaultWriteRate a second, DefaultWriteBurst at once.
	Writes *ratelimit.Limiter
}

// The default REST write budget per user: the real-time connection's
// default command rate, with room for a client that imports or replays a
// backlog at once.
const (
	DefaultWriteRate  = 100
	DefaultWriteBurst = 2000
)

// API serves the chat endpoints. It is safe for concurrent use.
type API struct {
	chat   *chat.Service
	acc    *accounts.Service
	log    *slog.Logger
	typing *ratelimit.Limiter // keyed by user id
	read   *ratelimit.Limiter // keyed by user id
	upload *ratelimit.Limiter // keyed by user id
	writes *ratelimit.Limiter // keyed by user id
}

// New returns the API for cfg.
func New(cfg Config) *API {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Typing == nil {
		cfg.Typing = ratelimit.New(ratelimit.Config{Rate: 2, Burst: 4})
	}
	if cfg.Read == nil {
		cfg.Read = ratelimit.New(ratelimit.Config{Rate: 5, Burst: 10})
	}
	if cfg.Upload == nil {
		cfg.Upload = ratelimit.New(ratelimit.Config{Rate: 0.5, Burst: 10})
	}
	if cfg.Writes == nil {
		cfg.Writes = ratelimit.New(ratelimit.Config{Rate: DefaultWriteRate, Burst: DefaultWriteBurst})
	}
	return &API{chat: cfg.Chat, acc: cfg.Accounts, log: cfg.Log, typing: cfg.Typing, read: cfg.Read, upload: cfg.Upload, writes: cfg.Writes}
}

// handler is an endpoint: it returns the JSON answer and its status, or an
// error (numbered errors become their status, others 500 and a log line).
type handler func(r *http.Request, id accounts.Identity) (any, int, error)

// roomHandler is an endpoint under /rooms/{room}; it gets the parsed room id.
type roomHandler func(r *http.Request, id accounts.Identity, roomID int64) (any, int, error)

// inRoom parses the {room} path value for h, answering 400 when it is not
// a room id.
func inRoom(h roomHandler) handler {
	return func(r *http.Request, id accounts.Identity) (any, int, error) {
		rid, err := roomID(r)
		if err != nil {
			return nil, 0, err
		}
		return h(r, id, rid)
	}
}

// wrap serves h for authenticated users, with a request body of at most
// httpx.MaxJSONBody bytes.
func (a *API) wrap(h handler) http.Handler { return a.serve(httpx.MaxJSONBody, nil, h) }

// serve serves h for authenticated users. The request body is bounded by
// maxBody here, with the real ResponseWriter, so that the server closes the
// connection after answering an oversized body instead of reading on; the
// handlers' own bounds (httpx.DecodeJSON) are the same or larger and never
// trip first. Each user's changing requests take a token from the write
// budget, and when throttle is set its requests also take one from it; an
// empty bucket is answered 429 with Retry-After.
func (a *API) serve(maxBody int64, throttle *ratelimit.Limiter, h handler) http.Handler {
	return a.acc.Require(func(w http.ResponseWriter, r *http.Request, id accounts.Identity) {
		key := strconv.FormatInt(id.User.ID, 10)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if wait, ok := a.writes.Allow(key); !ok {
				httpx.WriteRateLimited(w, wait, "too many changes; slow down")
				return
			}
		}
		if throttle != nil {
			if wait, ok := throttle.Allow(key); !ok {
				httpx.WriteRateLimited(w, wait, "too many requests of this kind; slow down")
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		res, status, err := h(r, id)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		httpx.WriteJSON(w, status, res)
	})
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	perr := httpx.ProtocolError(err)
	if perr == nil && errors.Is(err, store.ErrUnavailable) {
		// 503 and 122: the database is restarting or cut off; try again.
		a.log.Warn("chat request failed: store unreachable", "path", r.URL.Path, "err", err)
		perr = protocol.ErrStoreDown
	}
	if perr == nil {
		a.log.Error("chat request failed", "path", r.URL.Path, "err", err)
		perr = protocol.ErrInternal
	}
	if perr.Code == protocol.ErrStoreDown.Code {
		w.Header().Set("Retry-After", "1")
	}
	httpx.WriteError(w, perr)
}

// Routes registers the chat endpoints with handle.
func (a *API) Routes(handle func(pattern string, h http.Handler)) {
	handle("GET /api/v1/rooms", a.wrap(a.myRooms))
	handle("POST /api/v1/rooms", a.wrap(a.createRoom))
	handle("GET /api/v1/rooms/public", a.wrap(a.publicRooms))
	handle("POST /api/v1/direct/{username}", a.wrap(a.openDirect))
	handle("GET /api/v1/rooms/{room}", a.wrap(inRoom(a.room)))
	handle("PATCH /api/v1/rooms/{room}", a.wrap(inRoom(a.setTopic)))
	handle("POST /api/v1/rooms/{room}/join", a.wrap(inRoom(a.join)))
	handle("POST /api/v1/rooms/{room}/leave", a.wrap(inRoom(a.leave)))
	handle("GET /api/v1/rooms/{room}/members", a.wrap(inRoom(a.members)))
	handle("POST /api/v1/rooms/{room}/members", a.wrap(inRoom(a.invite)))
	handle("DELETE /api/v1/rooms/{room}/members/{username}", a.wrap(inRoom(a.kick)))
	handle("PUT /api/v1/rooms/{room}/members/{username}/role", a.wrap(inRoom(a.setRole)))
	handle("GET /api/v1/rooms/{room}/messages", a.wrap(inRoom(a.messages)))
	handle("POST /api/v1/rooms/{room}/messages", a.wrap(inRoom(a.post)))
	handle("PATCH /api/v1/rooms/{room}/messages/{seq}", a.wrap(inRoom(a.edit)))
	handle("DELETE /api/v1/rooms/{room}/messages/{seq}", a.wrap(inRoom(a.delete)))
	handle("PUT /api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}", a.wrap(inRoom(a.react(true))))
	handle("DELETE /api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}", a.wrap(inRoom(a.react(false))))
	handle("GET /api/v1/rooms/{room}/events", a.wrap(inRoom(a.events)))
	handle("POST /api/v1/rooms/{room}/read", a.serve(httpx.MaxJSONBody, a.read, inRoom(a.markRead)))
	handle("POST /api/v1/rooms/{room}/typing", a.serve(httpx.MaxJSONBody, a.typing, inRoom(a.sendTyping)))
	handle("GET /api/v1/rooms/{room}/presence", a.wrap(inRoom(a.presence)))
	handle("GET /api/v1/rooms/{room}/files", a.wrap(inRoom(a.files)))
	handle("POST /api/v1/rooms/{room}/files", a.serve(a.chat.MaxFileSize(), a.upload, inRoom(a.uploadFile)))
	handle("GET /api/v1/files/{file}", a.acc.Require(a.download))
	handle("GET /api/v1/search", a.wrap(a.search))
	handle("PUT /api/v1/rooms/{room}/notify", a.wrap(inRoom(a.setNotify)))
	handle("GET /api/v1/rooms/{room}/threads/{seq}", a.wrap(inRoom(a.thread)))
	handle("GET /api/v1/rooms/{room}/pins", a.wrap(inRoom(a.pins)))
	handle("PUT /api/v1/rooms/{room}/pins/{seq}", a.wrap(inRoom(a.pin(true))))
	handle("DELETE /api/v1/rooms/{room}/pins/{seq}", a.wrap(inRoom(a.pin(false))))
}

// Views: what the API shows of the store's types.

// RoomJSON is a room; the summary fields are set in "my rooms" lists.
type RoomJSON struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Title       string    `json:"title"`
	Topic       string    `json:"topic"`
	Kind        string    `json:"kind"`
	Channel     string    `json:"channel"`
	Epoch       string    `json:"epoch"`
	LastSeq     uint64    `json:"last_seq"`
	CreatedAt   time.Time `json:"created_at"`
	Role        string    `json:"role,omitempty"`
	LastReadSeq *uint64   `json:"last_read_seq,omitempty"`
	Unread      *int64    `json:"unread,omitempty"`
	Mentions    *int64    `json:"mentions,omitempty"`
	Notify      string    `json:"notify,omitempty"`
}

func roomView(r store.Room) RoomJSON {
	return RoomJSON{ID: r.ID, Name: r.Name, Title: r.Title, Topic: r.Topic, Kind: string(r.Kind), Channel: chat.RoomChannel(r.ID),
		Epoch: r.Epoch, LastSeq: r.LastSeq, CreatedAt: r.CreatedAt}
}

// MemberJSON is a room member.
type MemberJSON struct {
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"` // "" = none
	AvatarURL   string    `json:"avatar_url"`   // "" = none
	Role        string    `json:"role"`
	JoinedAt    time.Time `json:"joined_at"`
	LastReadSeq uint64    `json:"last_read_seq"`
}

// ReactionJSON is one emoji on a message and who gave it.
type ReactionJSON struct {
	Emoji string   `json:"emoji"`
	Users []string `json:"users"`
}

// MessageJSON is a message in its current state.
type MessageJSON struct {
	Room int64  `json:"room"`
	Seq  uint64 `json:"seq"`
	User string `json:"user"`
	// The author's profile now (not when the message was written).
	DisplayName string         `json:"display_name,omitempty"`
	AvatarURL   string         `json:"avatar_url,omitempty"`
	Text        string         `json:"text"`
	ReplyTo     uint64         `json:"reply_to,omitempty"`
	CreatedAt   time.Time      `json:"created_at"`
	EditedAt    *time.Time     `json:"edited_at,omitempty"`
	Deleted     bool           `json:"deleted,omitempty"`
	Reactions   []ReactionJSON `json:"reactions,omitempty"`
	ClientID    string         `json:"client_id,omitempty"`
	// Thread is the root's seq for a thread reply; a root has
	// ThreadReplies and ThreadLastSeq.
	Thread        uint64   `json:"thread,omitempty"`
	ThreadReplies int64    `json:"thread_replies,omitempty"`
	ThreadLastSeq uint64   `json:"thread_last_seq,omitempty"`
	Mentions      []string `json:"mentions,omitempty"`
	MentionRoom   bool     `json:"mention_room,omitempty"`
}

func (a *API) messageViews(r *http.Request, ms []store.Message) ([]MessageJSON, error) {
	out := make([]MessageJSON, 0, len(ms))
	ids := make([]int64, len(ms))
	for i, m := range ms {
		ids[i] = m.AuthorID
	}
	authors, err := a.chat.Users(r.Context(), ids)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		name, err := a.chat.UserName(r.Context(), m.AuthorID)
		if err != nil {
			return nil, err
		}
		au := authors[m.AuthorID]
		v := MessageJSON{Room: m.RoomID, Seq: m.Seq, User: name, DisplayName: au.DisplayName, AvatarURL: accounts.AvatarURL(au), Text: m.Body, ReplyTo: m.ReplyTo, CreatedAt: m.CreatedAt, Deleted: m.Deleted,
			ClientID: m.ClientID, Thread: m.Thread, ThreadReplies: m.ThreadReplies, ThreadLastSeq: m.ThreadLastSeq, MentionRoom: m.MentionRoom}
		if v.Mentions, err = a.chat.UserNames(r.Context(), m.Mentions); err != nil {
			return nil, err
		}
		if !m.EditedAt.IsZero() {
			e := m.EditedAt
			v.EditedAt = &e
		}
		for _, re := range m.Reactions {
			rj := ReactionJSON{Emoji: re.Emoji, Users: make([]string, 0, len(re.UserIDs))}
			for _, uid := range re.UserIDs {
				n, err := a.chat.UserName(r.Context(), uid)
				if err != nil {
					return nil, err
				}
				rj.Users = append(rj.Users, n)
			}
			v.Reactions = append(v.Reactions, rj)
		}
		out = append(out, v)
	}
	return out, nil
}

// FileJSON is an uploaded file's metadata.
type FileJSON struct {
	ID          string    `json:"id"`
	Room        int64     `json:"room"`
	Name        string    `json:"name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	URL         string    `json:"url"`
	CreatedAt   time.Time `json:"created_at"`
}

func fileView(f store.File) FileJSON {
	return FileJSON{ID: f.ID, Room: f.RoomID, Name: f.Name, ContentType: f.ContentType, Size: f.Size, SHA256: f.SHA256,
		URL: "/api/v1/files/" + f.ID, CreatedAt: f.CreatedAt}
}

// Request parsing helpers.

var errBadRoomID = protocol.ErrBadRequest.WithMessage("room id must be a positive integer")

func roomID(r *http.Request) (int64, error) {
	id, ok := chat.ParseID(r.PathValue("room"))
	if !ok {
		return 0, errBadRoomID
	}
	return id, nil
}

func seqParam(r *http.Request) (uint64, error) {
	id, ok := chat.ParseID(r.PathValue("seq"))
	if !ok {
		return 0, protocol.ErrBadRequest.WithMessage("message seq must be a positive integer")
	}
	return uint64(id), nil
}

// queryUint reads an optional non-negative integer query parameter.
func queryUint(r *http.Request, name string) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" || v == "0" {
		return 0, nil
	}
	n, ok := chat.ParseID(v)
	if !ok {
		return 0, protocol.ErrBadRequest.WithMessage(name + " must be a non-negative integer")
	}
	return uint64(n), nil
}

func queryLimit(r *http.Request) (int, error) {
	n, err := queryUint(r, "limit")
	if err != nil || n > store.MaxLimit {
		return 0, protocol.ErrBadRequest.WithMessage("limit must be between 1 and " + strconv.Itoa(store.MaxLimit))
	}
	return int(n), nil
}

// decode reads a JSON body. Its ResponseWriter is nil because serve has
// already bounded r.Body with the real one, at the same limit.
func decode(r *http.Request, v any) error {
	if perr := httpx.DecodeJSON(nil, r, v); perr != nil {
		return perr
	}
	return nil
}

var errUnsupportedUpload = protocol.ErrBadRequest.WithMessage("send the file's bytes as the request body, its name in ?name=")

func isMultipart(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "multipart/form-data"
}
