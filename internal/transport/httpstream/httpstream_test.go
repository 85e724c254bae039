package httpstream_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/transport"
	"github.com/sori-dev/sori/internal/transport/httpstream"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

// env is a real node with only the fallback endpoints, on a loopback port.
type env struct {
	t        *testing.T
	url      string
	hub      *hub.Hub
	node     *session.Node
	verifier *auth.Verifier
	handler  *httpstream.Handler
	client   *http.Client
	closed   chan struct{} // a token after each session's close (Node.OnClosed)
}

func start(t *testing.T, cfg session.Config, opts httpstream.Options) *env {
	t.Helper()
	h, err := hub.New(hub.Config{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{HMACSecret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	node := session.NewNode(cfg, h, v, nil, nil)
	closed := make(chan struct{}, 1)
	node.OnClosed(func(*session.Session) {
		select {
		case closed <- struct{}{}:
		default: // a token is already waiting: waitGone re-checks the count
		}
	})
	hs := httpstream.New(node, opts)
	mux := http.NewServeMux()
	hs.Mount(mux.Handle)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	tr := &http.Transport{}
	e := &env{t: t, url: "http://" + ln.Addr().String(), hub: h, node: node, verifier: v, handler: hs, closed: closed,
		client: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := node.Shutdown(ctx, protocol.DisconnectShutdown); err != nil {
			t.Errorf("node shutdown: %v", err)
		}
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("http shutdown: %v", err)
		}
		_ = hs.Close(ctx)
		tr.CloseIdleConnections()
		h.Close()
	})
	return e
}

func (e *env) token(user string, channels ...string) string {
	tok, err := e.verifier.Mint(auth.NewClaims(user, time.Hour, time.Now(), channels...))
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) do(method, path string, body string, hdr map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// open starts a session of kind with body as its first commands.
func (e *env) open(kind, body string) string {
	e.t.Helper()
	resp, b := e.do("POST", httpstream.PathOpen+"?transport="+kind, body, nil)
	if resp.StatusCode != 200 {
		e.t.Fatalf("open: %d %s", resp.StatusCode, b)
	}
	var r httpstream.OpenResult
	if err := json.Unmarshal(b, &r); err != nil || !strings.Contains(r.Session, ".") {
		e.t.Fatalf("open answered %s", b)
	}
	return r.Session
}

func (e *env) send(sid, body string) {
	e.t.Helper()
	resp, b := e.do("POST", httpstream.PathSend+"?session="+sid, body, nil)
	if resp.StatusCode != http.StatusNoContent {
		e.t.Fatalf("send: %d %s", resp.StatusCode, b)
	}
}

// poll runs one long poll and returns its messages and X-Sori-Seq.
func (e *env) poll(sid string, ack uint64, wait string) (status int, msgs []map[string]any, seq uint64) {
	e.t.Helper()
	resp, b := e.do("GET", fmt.Sprintf("%s?session=%s&ack=%d&wait=%s", httpstream.PathPoll, sid, ack, wait), "", nil)
	if cc := resp.Header.Get("Cache-Control"); resp.StatusCode < 300 && cc != "no-cache" {
		e.t.Errorf("poll Cache-Control %q", cc)
	}
	seq, _ = strconv.ParseUint(resp.Header.Get("X-Sori-Seq"), 10, 64)
	if resp.StatusCode == 200 {
		for _, line := range strings.Split(string(b), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				e.t.Fatalf("poll line %q: %v", line, err)
			}
			msgs = append(msgs, m)
		}
	}
	return resp.StatusCode, msgs, seq
}

// pollUntil polls (acking as it goes) until n messages arrived.
func (e *env) pollUntil(sid string, ack *uint64, n int) []map[string]any {
	e.t.Helper()
	var all []map[string]any
	for len(all) < n {
		st, msgs, seq := e.poll(sid, *ack, "5s")
		if st != 200 && st != 204 {
			e.t.Fatalf("poll status %d", st)
		}
		all = append(all, msgs...)
		*ack = seq
	}
	return all
}

func (e *env) publish(ch string, i int) {
	e.t.Helper()
	if _, err := e.hub.Publish(context.Background(), ch, []byte(fmt.Sprintf(`{"n":%d}`, i)), ""); err != nil {
		e.t.Fatal(err)
	}
}

// stream is an SSE reader.
type stream struct {
	t      *testing.T
	resp   *http.Response
	cancel context.CancelFunc
	events chan event
}

type event struct {
	id   string
	data map[string]any
}

func (e *env) stream(sid, lastID string) *stream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+httpstream.PathSSE+"?session="+sid, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		e.t.Fatalf("sse status %d", resp.StatusCode)
	}
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(k); got != want {
			e.t.Errorf("sse header %s=%q, want %q", k, got, want)
		}
	}
	s := &stream{t: e.t, resp: resp, cancel: cancel, events: make(chan event, 1000)}
	go s.read()
	e.t.Cleanup(s.drop)
	return s
}

func (s *stream) read() {
	defer close(s.events)
	br := bufio.NewReader(s.resp.Body)
	var id, data string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if data != "" {
				var m map[string]any
				if err := json.Unmarshal([]byte(data), &m); err != nil {
					s.t.Errorf("event data %q: %v", data, err)
				}
				s.events <- event{id, m}
			}
			id, data = "", ""
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			if data != "" {
				data += "\n"
			}
			data += line[6:]
		}
	}
}

func (s *stream) next() event {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatal("stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		s.t.Fatal("no event within 10s")
	}
	return event{}
}

// ended waits for the server to end the stream.
func (s *stream) ended() {
	s.t.Helper()
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return
			}
		case <-time.After(10 * time.Second):
			s.t.Fatal("stream not ended within 10s")
		}
	}
}

func (s *stream) drop() {
	s.cancel()
	_ = s.resp.Body.Close()
}

func num(v any) int { f, _ := v.(float64); return int(f) }

func TestSSESubscribePublishAndResumeAfterDroppedStream(t *testing.T) {
	e := start(t, session.Config{}, httpstream.Options{})
	tok := e.token("alice")
	sid := e.open("sse", fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`, tok))
	s := e.stream(sid, "")
	if ev := s.next(); num(ev.data["id"]) != 1 || ev.data["result"].(map[string]any)["user"] != "alice" {
		t.Fatalf("first event %v, want the connect reply", ev.data)
	}
	e.send(sid, `{"id":2,"op":"subscribe","channel":"room"}`)
	if ev := s.next(); num(ev.data["id"]) != 2 || ev.data["error"] != nil {
		t.Fatalf("subscribe reply %v", ev.data)
	}
	for i := 1; i <= 3; i++ {
		e.publish("room", i)
	}
	var ids []string
	for i := 1; i <= 3; i++ {
		ev := s.next()
		if n := num(ev.data["data"].(map[string]any)["n"]); n != i || ev.id == "" {
			t.Fatalf("event %d: %v (id %q)", i, ev.data, ev.id)
		}
		ids = append(ids, ev.id)
	}
	// The stream dies; two more publications arrive while it is down, and
	// the client saw only up to the second event.
	s.drop()
	e.publish("room", 4)
	e.publish("room", 5)
	s2 := e.stream(sid, ids[1])
	for want := 3; want <= 5; want++ {
		ev := s2.next()
		if n := num(ev.data["data"].(map[string]any)["n"]); n != want {
			t.Fatalf("after resume got n=%d, want %d (no gap, no duplicate)", n, want)
		}
	}
	if n := e.node.Count(); n != 1 {
		t.Fatalf("%d sessions, want the one resumed session", n)
	}
	// A publish over POST reaches the stream too, and an explicit close ends it.
	e.send(sid, `{"id":3,"op":"publish","channel":"room","data":{"n":6}}`)
	got := map[string]bool{}
	for range 2 {
		ev := s2.next()
		if ev.data["push"] == "pub" {
			got["pub"] = true
		} else if num(ev.data["id"]) == 3 {
			got["reply"] = true
		}
	}
	if !got["pub"] || !got["reply"] {
		t.Fatalf("after POST publish got %v, want the push and the reply", got)
	}
	resp, _ := e.do("POST", httpstream.PathClose+"?session="+sid, "", nil)
	if resp.StatusCode != 204 {
		t.Fatalf("close: %d", resp.StatusCode)
	}
	if ev := s2.next(); ev.data["push"] != "disconnect" || num(ev.data["code"]) != 1000 {
		t.Fatalf("last event %v, want disconnect 1000", ev.data)
	}
	s2.ended()
}

func TestLongPollSubscribePublishAndResumeAfterLostResponse(t *testing.T) {
	e := start(t, session.Config{}, httpstream.Options{})
	sid := e.open("longpoll", fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`+"\n"+`{"id":2,"op":"subscribe","channel":"room"}`, e.token("bob")))
	var ack uint64
	msgs := e.pollUntil(sid, &ack, 2)
	if num(msgs[0]["id"]) != 1 || num(msgs[1]["id"]) != 2 || msgs[1]["error"] != nil {
		t.Fatalf("replies %v", msgs)
	}
	// A short poll with nothing queued answers at once.
	if st, _, seq := e.poll(sid, ack, "0"); st != 204 || seq != ack {
		t.Fatalf("short poll: %d seq %d, want 204 seq %d", st, seq, ack)
	}
	for i := 1; i <= 3; i++ {
		e.publish("room", i)
	}
	first := e.pollUntil(sid, &ack, 3)
	lost := ack
	// The response is lost: the client polls again with its old ack and
	// gets the same frames; then acks and gets only new ones.
	_, again, seq := e.poll(sid, lost-uint64(len(first)), "0")
	if len(again) != len(first) || seq != lost {
		t.Fatalf("re-poll after a lost response: %d frames seq %d, want %d seq %d", len(again), seq, len(first), lost)
	}
	e.publish("room", 4)
	ack = seq
	next := e.pollUntil(sid, &ack, 1)
	if len(next) != 1 || num(next[0]["data"].(map[string]any)["n"]) != 4 {
		t.Fatalf("after ack got %v, want only n=4", next)
	}
	// A waiting poll is woken by a publication: publish once it has
	// attached (earlier polls attached before they answered).
	attached := e.handler.Attachments(sid)
	done := make(chan []map[string]any)
	go func() { _, m, _ := e.poll(sid, ack, "10s"); done <- m }()
	for deadline := time.Now().Add(10 * time.Second); e.handler.Attachments(sid) == attached; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the long poll never attached")
		}
	}
	e.publish("room", 5)
	if m := <-done; len(m) != 1 || num(m[0]["data"].(map[string]any)["n"]) != 5 {
		t.Fatalf("woken poll got %v", m)
	}
}

func TestAuthFailureClosesWithDisconnectPush(t *testing.T) {
	e := start(t, session.Config{}, httpstream.Options{})
	sid := e.open("longpoll", `{"id":1,"op":"connect","token":"not-a-jwt"}`)
	var ack uint64
	msgs := e.pollUntil(sid, &ack, 2)
	errObj, _ := msgs[0]["error"].(map[string]any)
	if num(errObj["code"]) != 113 || msgs[1]["push"] != "disconnect" || num(msgs[1]["code"]) != 4501 {
		t.Fatalf("got %v, want error 113 then disconnect 4501", msgs)
	}
	if st, _, _ := e.poll(sid, ack, "1s"); st != 404 {
		t.Fatalf("poll after the final push: %d, want 404", st)
	}
	resp, _ := e.do("POST", httpstream.PathSend+"?session="+sid, `{"id":2,"op":"ping"}`, nil)
	if resp.StatusCode != 404 {
		t.Fatalf("send to a closed session: %d, want 404", resp.StatusCode)
	}
	e.waitGone()
}

// waitGone waits until the node has no session left, woken by each close
// (OnClosed hooks run after the session left the node, so no close is
// missed between the count and the wait).
func (e *env) waitGone() {
	e.t.Helper()
	timeout := time.After(10 * time.Second)
	for e.node.Count() != 0 {
		select {
		case <-e.closed:
		case <-timeout:
			e.t.Fatalf("%d sessions left after 10 s, want none", e.node.Count())
		}
	}
}

func TestLimitsAndBadInput(t *testing.T) {
	e := start(t, session.Config{MaxConnections: 2, MaxMessageSize: 1024}, httpstream.Options{
		Origins: transport.OriginPolicy{Allowed: []string{"https://app.example"}},
	})
	sid := e.open("longpoll", fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`, e.token("carol")))
	var ack uint64
	e.pollUntil(sid, &ack, 1)

	resp, b := e.do("POST", httpstream.PathSend+"?session="+sid, `{"id":2,"op":"publish","channel":"room","data":"`+strings.Repeat("x", 2000)+`"}`, nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), `"code":110`) {
		t.Fatalf("oversized body: %d %s, want 413 with code 110", resp.StatusCode, b)
	}
	e.send(sid, `{"id":3,"op":`)
	msgs := e.pollUntil(sid, &ack, 1)
	if errObj, _ := msgs[0]["error"].(map[string]any); num(errObj["code"]) != 101 {
		t.Fatalf("bad JSON got %v, want error 101", msgs)
	}
	for _, path := range []string{httpstream.PathSend, httpstream.PathPoll, httpstream.PathSSE} {
		method := "GET"
		if path == httpstream.PathSend {
			method = "POST"
		}
		for _, bad := range []string{"nope.nope", strings.Split(sid, ".")[0] + ".wrongsecret", ""} {
			resp, b := e.do(method, path+"?session="+bad, "", nil)
			if resp.StatusCode != 404 || !strings.Contains(string(b), `"code":117`) || !strings.Contains(string(b), "unknown") {
				t.Fatalf("%s %s with session %q: %d %s, want 404 code 117", method, path, bad, resp.StatusCode, b)
			}
		}
	}
	if st, _, _ := e.poll(sid, ack, "x"); st != 400 {
		t.Fatalf("bad wait: %d, want 400", st)
	}
	if resp, _ := e.do("GET", httpstream.PathPoll+"?session="+sid+"&ack=-1", "", nil); resp.StatusCode != 400 {
		t.Fatalf("bad ack: %d, want 400", resp.StatusCode)
	}
	if resp, _ := e.do("POST", httpstream.PathOpen+"?transport=carrier-pigeon", "", nil); resp.StatusCode != 400 {
		t.Fatalf("bad transport: %d, want 400", resp.StatusCode)
	}
	// Origins: a foreign one is refused, an allowed one gets CORS headers.
	if resp, _ := e.do("POST", httpstream.PathOpen, "", map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != 403 {
		t.Fatalf("foreign origin: %d, want 403", resp.StatusCode)
	}
	resp, _ = e.do("OPTIONS", httpstream.PathSend, "", map[string]string{"Origin": "https://app.example"})
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	// The connection limit: one session is open, a second fits, a third not.
	e.open("sse", "")
	resp, b = e.do("POST", httpstream.PathOpen, "", nil)
	if resp.StatusCode != 503 || !strings.Contains(string(b), `"code":4503`) {
		t.Fatalf("over the limit: %d %s, want 503 with disconnect 4503", resp.StatusCode, b)
	}
}

func TestAbandonedSessionIsClosed(t *testing.T) {
	e := start(t, session.Config{}, httpstream.Options{SessionTimeout: 100 * time.Millisecond, Linger: 100 * time.Millisecond})
	sid := e.open("longpoll", fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`, e.token("dave")))
	e.waitGone()
	// Within the linger the client can still learn why.
	_, msgs, _ := e.poll(sid, 0, "0")
	if len(msgs) != 2 || msgs[1]["push"] != "disconnect" || num(msgs[1]["code"]) != 4002 {
		t.Fatalf("late poll got %v, want the connect reply then disconnect 4002", msgs)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, _, _ := e.poll(sid, 0, "0"); st == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("closed session never forgotten")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestShutdownEndsStreamsWithReconnectHint(t *testing.T) {
	e := start(t, session.Config{}, httpstream.Options{})
	sid := e.open("sse", fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`, e.token("erin")))
	s := e.stream(sid, "")
	s.next()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.node.Shutdown(ctx, protocol.DisconnectShutdown)
	}()
	ev := s.next()
	if ev.data["push"] != "disconnect" || num(ev.data["code"]) != 1001 || ev.data["reconnect"] != true {
		t.Fatalf("got %v, want disconnect 1001 with reconnect", ev.data)
	}
	s.ended()
}

func TestSSEDataWithNewlinesStaysOneMessage(t *testing.T) {
	e := start(t, session.Config{}, httpstream.Options{})
	sid := e.open("sse", fmt.Sprintf(`{"id":1,"op":"connect","token":%q}`+"\n"+`{"id":2,"op":"subscribe","channel":"room"}`, e.token("fay")))
	s := e.stream(sid, "")
	s.next()
	s.next()
	if _, err := e.hub.Publish(context.Background(), "room", []byte("{\n\"a\":\r\n1}"), ""); err != nil {
		t.Fatal(err)
	}
	ev := s.next()
	if num(ev.data["data"].(map[string]any)["a"]) != 1 {
		t.Fatalf("got %v", ev.data)
	}
}

func TestClosedSessionsCountAgainstThePerIPLimitUntilForgotten(t *testing.T) {
	e := start(t, session.Config{MaxConnectionsPerIP: 3}, httpstream.Options{Linger: time.Hour})
	// Open and close sessions in a loop: each leaves the node at once but
	// lingers in the registry, and counts there.
	for range 3 {
		sid := e.open("longpoll", "")
		if resp, b := e.do("POST", httpstream.PathClose+"?session="+sid, "", nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("close: %d %s", resp.StatusCode, b)
		}
	}
	e.waitGone()
	resp, b := e.do("POST", httpstream.PathOpen, "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"code":4503`) || !strings.Contains(string(b), "per-IP") {
		t.Fatalf("open with 3 lingering sessions: %d %s, want 503 with disconnect 4503 (per-IP)", resp.StatusCode, b)
	}
	// Once the linger is over they are forgotten and the address may open
	// sessions again. (A session is forgotten only after its close has
	// finished, which runs in the background: sweep until it has.)
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.handler.Sweep(time.Now().Add(2 * time.Hour))
		resp, b := e.do("POST", httpstream.PathOpen, "", nil)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("open after the linger: %d %s, want 200", resp.StatusCode, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
