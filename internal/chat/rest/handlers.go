package rest

import (
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/sori-dev/sori/internal/accounts"
	"github.com/sori-dev/sori/internal/chat"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
)

func (a *API) myRooms(r *http.Request, id accounts.Identity) (any, int, error) {
	rs, err := a.chat.MyRooms(r.Context(), id.User)
	if err != nil {
		return nil, 0, err
	}
	out := make([]RoomJSON, 0, len(rs))
	for _, s := range rs {
		v := roomView(s.Room)
		lr, un, mn := s.LastReadSeq, s.Unread, s.Mentions
		v.Role, v.LastReadSeq, v.Unread, v.Mentions, v.Notify = string(s.Role), &lr, &un, &mn, string(s.Notify)
		out = append(out, v)
	}
	return map[string]any{"rooms": out}, http.StatusOK, nil
}

func (a *API) publicRooms(r *http.Request, _ accounts.Identity) (any, int, error) {
	rs, err := a.chat.PublicRooms(r.Context())
	if err != nil {
		return nil, 0, err
	}
	out := make([]RoomJSON, 0, len(rs))
	for _, x := range rs {
		out = append(out, roomView(x))
	}
	return map[string]any{"rooms": out}, http.StatusOK, nil
}

type createRoomRequest struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	Topic string `json:"topic"`
	Kind  string `json:"kind"` // public (default) or private
}

func (a *API) createRoom(r *http.Request, id accounts.Identity) (any, int, error) {
	var req createRoomRequest
	if err := decode(r, &req); err != nil {
		return nil, 0, err
	}
	if req.Kind == "" {
		req.Kind = string(store.RoomPublic)
	}
	room, err := a.chat.CreateRoom(r.Context(), id.User, chat.NewRoom{Name: req.Name, Title: req.Title, Topic: req.Topic, Kind: store.RoomKind(req.Kind)})
	if err != nil {
		return nil, 0, err
	}
	v := roomView(room)
	v.Role = string(store.RoleOwner)
	return v, http.StatusCreated, nil
}

func (a *API) openDirect(r *http.Request, id accounts.Identity) (any, int, error) {
	room, created, err := a.chat.OpenDirect(r.Context(), id.User, r.PathValue("username"))
	if err != nil {
		return nil, 0, err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return roomView(room), status, nil
}

func (a *API) room(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	room, m, err := a.chat.Room(r.Context(), id.User, rid)
	if err != nil {
		return nil, 0, err
	}
	v := roomView(room)
	lr := m.LastReadSeq
	v.Role, v.LastReadSeq = string(m.Role), &lr
	return v, http.StatusOK, nil
}

type topicRequest struct {
	Topic *string `json:"topic"`
}

func (a *API) setTopic(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	var req topicRequest
	if err := decode(r, &req); err != nil {
		return nil, 0, err
	}
	if req.Topic == nil {
		return nil, 0, protocol.ErrBadRequest.WithMessage("topic is required (the only field that can change)")
	}
	if err := a.chat.SetTopic(r.Context(), id.User, rid, *req.Topic); err != nil {
		return nil, 0, err
	}
	return a.room(r, id, rid)
}

func (a *API) join(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	if _, err := a.chat.Join(r.Context(), id.User, rid); err != nil {
		return nil, 0, err
	}
	return a.room(r, id, rid)
}

func (a *API) leave(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	if err := a.chat.Leave(r.Context(), id.User, rid); err != nil {
		return nil, 0, err
	}
	return struct{}{}, http.StatusOK, nil
}

func (a *API) members(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	ms, err := a.chat.Members(r.Context(), id.User, rid)
	if err != nil {
		return nil, 0, err
	}
	out := make([]MemberJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, MemberJSON{Username: m.Username, DisplayName: m.User.DisplayName, AvatarURL: accounts.AvatarURL(m.User),
			Role: string(m.Role), JoinedAt: m.JoinedAt, LastReadSeq: m.LastReadSeq})
	}
	return map[string]any{"members": out}, http.StatusOK, nil
}

type inviteRequest struct {
	Username string `json:"username"`
}

func (a *API) invite(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	var req inviteRequest
	if err := decode(r, &req); err != nil {
		return nil, 0, err
	}
	m, err := a.chat.Invite(r.Context(), id.User, rid, req.Username)
	if err != nil {
		return nil, 0, err
	}
	name, err := a.chat.UserName(r.Context(), m.UserID)
	if err != nil {
		return nil, 0, err
	}
	return MemberJSON{Username: name, Role: string(m.Role), JoinedAt: m.JoinedAt}, http.StatusCreated, nil
}

func (a *API) kick(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	if err := a.chat.Kick(r.Context(), id.User, rid, r.PathValue("username")); err != nil {
		return nil, 0, err
	}
	return struct{}{}, http.StatusOK, nil
}

type roleRequest struct {
	Role string `json:"role"`
}

func (a *API) setRole(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	var req roleRequest
	if err := decode(r, &req); err != nil {
		return nil, 0, err
	}
	if err := a.chat.SetRole(r.Context(), id.User, rid, r.PathValue("username"), store.Role(req.Role)); err != nil {
		return nil, 0, err
	}
	return struct{}{}, http.StatusOK, nil
}

func (a *API) messages(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	var (
		p   chat.Page
		err error
	)
	if p.Before, err = queryUint(r, "before"); err != nil {
		return nil, 0, err
	}
	if p.After, err = queryUint(r, "after"); err != nil {
		return nil, 0, err
	}
	// after=0 asks for the first messages, oldest first (issue 9.9: it
	// used to mean "no after" and returned the newest).
	p.Forward = r.URL.Query().Has("after")
	if p.Around, err = queryUint(r, "around"); err != nil {
		return nil, 0, err
	}
	if p.Limit, err = queryLimit(r); err != nil {
		return nil, 0, err
	}
	ms, err := a.chat.Messages(r.Context(), id.User, rid, p)
	if err != nil {
		return nil, 0, err
	}
	out, err := a.messageViews(r, ms)
	if err != nil {
		return nil, 0, err
	}
	return map[string]any{"messages": out}, http.StatusOK, nil
}

type postRequest struct {
	Text     string `json:"text"`
	ReplyTo  uint64 `json:"reply_to"`
	Thread   uint64 `json:"thread"`
	ClientID string `json:"client_id"`
}

func (a *API) post(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	var req postRequest
	if err := decode(r, &req); err != nil {
		return nil, 0, err
	}
	res, err := a.chat.PostMessage(r.Context(), id.User, rid, chat.NewMessage{Text: req.Text, ReplyTo: req.ReplyTo, Thread: req.Thread, ClientID: req.ClientID})
	if err != nil {
		return nil, 0, err
	}
	if res.Duplicate {
		return res, http.StatusOK, nil // a retry: nothing was created
	}
	return res, http.StatusCreated, nil
}

type editRequest struct {
	Text string `json:"text"`
}

func (a *API) edit(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	seq, err := seqParam(r)
	if err != nil {
		return nil, 0, err
	}
	var req editRequest
	if err := decode(r, &req); err != nil {
		return nil, 0, err
	}
	res, err := a.chat.Edit(r.Context(), id.User, rid, seq, req.Text)
	if err != nil {
		return nil, 0, err
	}
	return res, http.StatusOK, nil
}

func (a *API) delete(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	seq, err := seqParam(r)
	if err != nil {
		return nil, 0, err
	}
	res, err := a.chat.Delete(r.Context(), id.User, rid, seq)
	if err != nil {
		return nil, 0, err
	}
	return res, http.StatusOK, nil
}

func (a *API) react(add bool) roomHandler {
	return func(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
		seq, err := seqParam(r)
		if err != nil {
			return nil, 0, err
		}
		res, err := a.chat.React(r.Context(), id.User, rid, seq, r.PathValue("emoji"), add)
		if err != nil {
			return nil, 0, err
		}
		return res, http.StatusOK, nil
	}
}

func (a *API) events(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	after, err := queryUint(r, "after")
	if err != nil {
		return nil, 0, err
	}
	limit, err := queryLimit(r)
	if err != nil {
		return nil, 0, err
	}
	pubs, top, err := a.chat.Events(r.Context(), id.User, rid, after, limit)
	if err != nil {
		return nil, 0, err
	}
	return protocol.HistoryResult{Epoch: top.Epoch, Offset: top.Offset, Publications: pubs}, http.StatusOK, nil
}

type readRequest struct {
	Seq uint64 `json:"seq"`
}

func (a *API) markRead(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	var req readRequest
	if err := decode(r, &req); err != nil {
		return nil, 0, err
	}
	got, err := a.chat.MarkRead(r.Context(), id.User, rid, req.Seq)
	if err != nil {
		return nil, 0, err
	}
	return map[string]any{"last_read_seq": got}, http.StatusOK, nil
}

func (a *API) sendTyping(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	if err := a.chat.Typing(r.Context(), id.User, rid); err != nil {
		return nil, 0, err
	}
	return struct{}{}, http.StatusOK, nil
}

func (a *API) presence(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	users, err := a.chat.Online(r.Context(), id.User, rid)
	if err != nil {
		return nil, 0, err
	}
	return map[string]any{"users": users}, http.StatusOK, nil
}

func (a *API) search(r *http.Request, id accounts.Identity) (any, int, error) {
	q := r.URL.Query()
	var rid int64
	if v := q.Get("room"); v != "" {
		var ok bool
		if rid, ok = chat.ParseID(v); !ok {
			return nil, 0, errBadRoomID
		}
	}
	limit, err := queryLimit(r)
	if err != nil {
		return nil, 0, err
	}
	ms, err := a.chat.Search(r.Context(), id.User, q.Get("q"), rid, limit)
	if err != nil {
		return nil, 0, err
	}
	out, err := a.messageViews(r, ms)
	if err != nil {
		return nil, 0, err
	}
	return map[string]any{"messages": out}, http.StatusOK, nil
}

func (a *API) files(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	limit, err := queryLimit(r)
	if err != nil {
		return nil, 0, err
	}
	fs, err := a.chat.Files(r.Context(), id.User, rid, r.URL.Query().Get("before"), limit)
	if err != nil {
		return nil, 0, err
	}
	out := make([]FileJSON, 0, len(fs))
	for _, f := range fs {
		out = append(out, fileView(f))
	}
	// max_size lets a client check a file against the upload limit before
	// sending its bytes (and show the limit in its own units).
	return map[string]any{"files": out, "max_size": a.chat.MaxFileSize()}, http.StatusOK, nil
}

// upload takes the file's bytes as the raw request body (what fetch(url,
// {body: file}) and curl --data-binary send) and its name in ?name=.
func (a *API) uploadFile(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	if isMultipart(r) {
		return nil, 0, errUnsupportedUpload
	}
	max := a.chat.MaxFileSize()
	if r.ContentLength > max {
		return nil, 0, protocol.ErrMessageTooLarge.WithMessage("file exceeds the upload size limit of " + strconv.FormatInt(max, 10) + " bytes")
	}
	// r.Body is bounded at max by serve.
	f, err := a.chat.Upload(r.Context(), id.User, rid, r.URL.Query().Get("name"), r.Body)
	if err != nil {
		return nil, 0, err
	}
	return fileView(f), http.StatusCreated, nil
}

// download serves a file to members of its room. Only raster images are
// shown inline; everything else is an attachment. nosniff stops the
// browser second-guessing the type, and the sandbox CSP keeps a file that
// is rendered anyway from running script with the app's origin.
func (a *API) download(w http.ResponseWriter, r *http.Request, id accounts.Identity) {
	meta, f, err := a.chat.OpenFile(r.Context(), id.User, r.PathValue("file"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer f.Close()
	disp := "attachment"
	ctype := meta.ContentType
	if chat.Inline(ctype) {
		disp = "inline"
	} else {
		ctype = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": meta.Name}))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private, max-age=3600")
	h.Set("Content-Length", strconv.FormatInt(meta.Size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = io.Copy(w, f)
	}
}

type notifyRequest struct {
	Level string `json:"level"`
}

func (a *API) setNotify(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	var req notifyRequest
	if err := decode(r, &req); err != nil {
		return nil, 0, err
	}
	if err := a.chat.SetNotify(r.Context(), id.User, rid, store.NotifyLevel(req.Level)); err != nil {
		return nil, 0, err
	}
	return map[string]any{"level": req.Level}, http.StatusOK, nil
}

func (a *API) thread(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	seq, err := seqParam(r)
	if err != nil {
		return nil, 0, err
	}
	after, err := queryUint(r, "after")
	if err != nil {
		return nil, 0, err
	}
	limit, err := queryLimit(r)
	if err != nil {
		return nil, 0, err
	}
	root, ms, err := a.chat.Thread(r.Context(), id.User, rid, seq, after, limit)
	if err != nil {
		return nil, 0, err
	}
	views, err := a.messageViews(r, append([]store.Message{root}, ms...))
	if err != nil {
		return nil, 0, err
	}
	return map[string]any{"root": views[0], "messages": views[1:]}, http.StatusOK, nil
}

// PinJSON is a pinned message.
type PinJSON struct {
	MessageJSON
	PinnedBy string    `json:"pinned_by"`
	PinnedAt time.Time `json:"pinned_at"`
}

func (a *API) pins(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
	ps, err := a.chat.Pins(r.Context(), id.User, rid)
	if err != nil {
		return nil, 0, err
	}
	ms := make([]store.Message, len(ps))
	for i, p := range ps {
		ms[i] = p.Message
	}
	views, err := a.messageViews(r, ms)
	if err != nil {
		return nil, 0, err
	}
	out := make([]PinJSON, len(ps))
	for i, p := range ps {
		by, err := a.chat.UserName(r.Context(), p.PinnedBy)
		if err != nil {
			return nil, 0, err
		}
		out[i] = PinJSON{MessageJSON: views[i], PinnedBy: by, PinnedAt: p.PinnedAt}
	}
	return map[string]any{"pins": out}, http.StatusOK, nil
}

func (a *API) pin(pin bool) roomHandler {
	return func(r *http.Request, id accounts.Identity, rid int64) (any, int, error) {
		seq, err := seqParam(r)
		if err != nil {
			return nil, 0, err
		}
		res, err := a.chat.Pin(r.Context(), id.User, rid, seq, pin)
		if err != nil {
			return nil, 0, err
		}
		return res, http.StatusOK, nil
	}
}
