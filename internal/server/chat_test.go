package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// chatUser is an account on a test server, with an API bearer token.
type chatUser struct {
	name  string
	token string
}

// signup creates an account over the REST API and returns it with a token.
func signup(t *testing.T, baseURL, name string) chatUser {
	t.Helper()
	out := restCall(t, baseURL, "", "POST", "/api/v1/auth/signup",
		map[string]string{"username": name, "password": "password-" + name, "kind": "api"}, http.StatusCreated)
	return chatUser{name: name, token: out["token"].(string)}
}

// restDo sends a request with an optional body (of contentType, when not
// empty) and bearer token, and returns the status, the decoded JSON body
// (nil when it is not JSON) and the response headers.
func restDo(t *testing.T, baseURL, token, method, path string, body io.Reader, contentType string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, baseURL+path, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

// restCall sends a JSON request with an optional bearer token and checks the
// status; it returns the decoded body.
func restCall(t *testing.T, baseURL, token, method, path string, body any, wantStatus int) map[string]any {
	t.Helper()
	var rd io.Reader
	contentType := ""
	if body != nil {
		b, _ := json.Marshal(body)
		rd, contentType = bytes.NewReader(b), "application/json"
	}
	status, out, _ := restDo(t, baseURL, token, method, path, rd, contentType)
	if status != wantStatus {
		t.Fatalf("%s %s: status %d, want %d (%v)", method, path, status, wantStatus, out)
	}
	return out
}

func (u chatUser) call(t *testing.T, ts *testServer, method, path string, body any, wantStatus int) map[string]any {
	t.Helper()
	return restCall(t, ts.URL, u.token, method, path, body, wantStatus)
}

// connectChat opens a real-time connection with a token minted for u.
func connectChat(t *testing.T, ts *testServer, u chatUser) *client {
	t.Helper()
	tok := u.call(t, ts, "POST", "/api/v1/auth/connect-token", nil, http.StatusOK)["token"].(string)
	cl := dial(t, ts, nil)
	cl.call(map[string]any{"op": "connect", "token": tok})
	return cl
}

// nextPub returns the next publication push on channel, skipping others.
func (cl *client) nextPub(channel string) map[string]any {
	cl.t.Helper()
	for {
		m := cl.next()
		if m["push"] == "pub" && m["channel"] == channel {
			return m
		}
	}
}

func TestChatRESTAndRealtimeShareOnePath(t *testing.T) {
	ts := startServer(t, nil)
	alice, bob := signup(t, ts.URL, "alice"), signup(t, ts.URL, "bob")
	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "team", "kind": "private", "topic": "plans"}, http.StatusCreated)
	id := int64(room["id"].(float64))
	ch := room["channel"].(string)
	if ch != fmt.Sprintf("chat:%d", id) {
		t.Fatalf("room channel %q", ch)
	}
	alice.call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/members", id), map[string]any{"username": "bob"}, http.StatusCreated)

	bc := connectChat(t, ts, bob)
	sub := bc.call(map[string]any{"op": "subscribe", "channel": ch})
	if sub["epoch"] != room["epoch"] || num(sub["offset"]) != 0 {
		t.Fatalf("subscribe %v: want the room's epoch %v at offset 0", sub, room["epoch"])
	}
	bc.call(map[string]any{"op": "subscribe", "channel": ch + "#live"})

	// REST post: acknowledged with its seq, fanned out as the channel offset.
	posted := alice.call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", id), map[string]any{"text": "hello bob"}, http.StatusCreated)
	if num(posted["seq"]) != 1 {
		t.Fatalf("post: %v", posted)
	}
	pub := bc.nextPub(ch)
	data := pub["data"].(map[string]any)
	if num(pub["offset"]) != 1 || pub["user"] != "alice" || data["type"] != "message" || data["text"] != "hello bob" {
		t.Fatalf("bob got %v", pub)
	}

	// Real-time publish: the same validation, store and fan-out.
	// (The push may come before or after the reply.)
	res, perr, pushes := bc.reply(bc.send(map[string]any{"op": "publish", "channel": ch, "data": map[string]any{"type": "message", "text": "hi alice", "reply_to": 1}}))
	if perr != nil || num(res["offset"]) != 2 {
		t.Fatalf("publish: %v %v", res, perr)
	}
	var own map[string]any
	for _, p := range pushes {
		if p["push"] == "pub" && p["channel"] == ch {
			own = p
		}
	}
	if own == nil {
		own = bc.nextPub(ch)
	}
	if num(own["offset"]) != 2 || own["data"].(map[string]any)["reply_to"] != float64(1) {
		t.Fatalf("own publication: %v", own)
	}
	bc.callErr(map[string]any{"op": "publish", "channel": ch, "data": map[string]any{"type": "message", "text": ""}}, 101)
	bc.callErr(map[string]any{"op": "publish", "channel": ch, "data": map[string]any{"type": "message", "text": "x", "reply_to": 99}}, 117)
	bc.callErr(map[string]any{"op": "publish", "channel": ch, "data": "text"}, 114)
	bc.callErr(map[string]any{"op": "publish", "channel": ch, "data": map[string]any{"type": "edit", "target": 1, "text": "mine now"}}, 104)
	bc.callErr(map[string]any{"op": "publish", "channel": ch + "#live", "data": map[string]any{"type": "typing"}}, 104)

	msgs := bob.call(t, ts, "GET", fmt.Sprintf("/api/v1/rooms/%d/messages", id), nil, http.StatusOK)["messages"].([]any)
	if len(msgs) != 2 || msgs[1].(map[string]any)["text"] != "hi alice" || msgs[1].(map[string]any)["user"] != "bob" {
		t.Fatalf("history: %v", msgs)
	}

	// Edit, reaction and delete travel as events with their own offsets.
	alice.call(t, ts, "PATCH", fmt.Sprintf("/api/v1/rooms/%d/messages/1", id), map[string]any{"text": "hello, bob"}, http.StatusOK)
	alice.call(t, ts, "PUT", fmt.Sprintf("/api/v1/rooms/%d/messages/2/reactions/%s", id, "%F0%9F%91%8D"), nil, http.StatusOK)
	bob.call(t, ts, "DELETE", fmt.Sprintf("/api/v1/rooms/%d/messages/2", id), nil, http.StatusOK)
	for i, want := range []string{"edit", "reaction_add", "delete"} {
		p := bc.nextPub(ch)
		if num(p["offset"]) != uint64(3+i) || p["data"].(map[string]any)["type"] != want {
			t.Fatalf("event %d: %v, want %s", i, p, want)
		}
	}

	// Typing and receipts go to the live channel, not the log.
	alice.call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/typing", id), nil, http.StatusOK)
	if p := bc.nextPub(ch + "#live"); p["data"].(map[string]any)["type"] != "typing" || p["data"].(map[string]any)["user"] != "alice" {
		t.Fatalf("typing: %v", p)
	}
	bc.call(map[string]any{"op": "rpc", "method": "chat.typing", "data": map[string]any{"room": id}})
	bc.call(map[string]any{"op": "rpc", "method": "chat.read", "data": map[string]any{"room": id, "seq": 5}})
	rooms := bob.call(t, ts, "GET", "/api/v1/rooms", nil, http.StatusOK)["rooms"].([]any)
	if r := rooms[0].(map[string]any); num(r["last_read_seq"]) != 5 || num(r["last_seq"]) != 5 {
		t.Fatalf("bob's rooms after reading: %v", r)
	}
	if got := alice.call(t, ts, "GET", fmt.Sprintf("/api/v1/rooms/%d/presence", id), nil, http.StatusOK)["users"].([]any); len(got) != 1 || got[0] != "bob" {
		t.Fatalf("presence: %v, want bob", got)
	}
	hits := bob.call(t, ts, "GET", "/api/v1/search?q=hello", nil, http.StatusOK)["messages"].([]any)
	if len(hits) != 1 || hits[0].(map[string]any)["text"] != "hello, bob" {
		t.Fatalf("search: %v", hits)
	}

	// A kicked member's live subscriptions end at once.
	alice.call(t, ts, "DELETE", fmt.Sprintf("/api/v1/rooms/%d/members/bob", id), nil, http.StatusOK)
	for {
		m := bc.next()
		if m["push"] == "unsub" && m["channel"] == ch {
			break
		}
	}
	bc.callErr(map[string]any{"op": "subscribe", "channel": ch}, 104)
	bob.call(t, ts, "GET", fmt.Sprintf("/api/v1/rooms/%d/messages", id), nil, http.StatusForbidden)
}

// TestChatNonMemberIsRefusedEverywhere checks each way into a private room,
// over REST and over the real-time connection.
func TestChatNonMemberIsRefusedEverywhere(t *testing.T) {
	ts := startServer(t, nil)
	alice, eve := signup(t, ts.URL, "alice"), signup(t, ts.URL, "eve")
	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "secret", "kind": "private"}, http.StatusCreated)
	id := int64(room["id"].(float64))
	ch := room["channel"].(string)
	alice.call(t, ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", id), map[string]any{"text": "the password is swordfish"}, http.StatusCreated)
	file := uploadFile(t, ts, alice, id, "plan.txt", []byte("step one"), http.StatusCreated)

	// Real time: subscribe, history, presence, publish, live channel, rpc.
	ec := connectChat(t, ts, eve)
	ec.callErr(map[string]any{"op": "subscribe", "channel": ch}, 104)
	ec.callErr(map[string]any{"op": "subscribe", "channel": ch + "#live"}, 104)
	ec.callErr(map[string]any{"op": "history", "channel": ch, "limit": 10}, 104)
	ec.callErr(map[string]any{"op": "presence", "channel": ch}, 104)
	ec.callErr(map[string]any{"op": "publish", "channel": ch, "data": map[string]any{"type": "message", "text": "hi"}}, 104)
	ec.callErr(map[string]any{"op": "rpc", "method": "chat.typing", "data": map[string]any{"room": id}}, 104)
	ec.callErr(map[string]any{"op": "subscribe", "channel": "chat:lobby"}, 104)

	// REST: read, post, search, members, files, join.
	base := fmt.Sprintf("/api/v1/rooms/%d", id)
	for _, c := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"GET", base, nil, 403},
		{"GET", base + "/messages", nil, 403},
		{"GET", base + "/events", nil, 403},
		{"POST", base + "/messages", map[string]any{"text": "hi"}, 403},
		{"GET", base + "/members", nil, 403},
		{"GET", base + "/files", nil, 403},
		{"GET", base + "/presence", nil, 403},
		{"POST", base + "/typing", nil, 403},
		{"POST", base + "/read", map[string]any{"seq": 1}, 403},
		{"POST", base + "/members", map[string]any{"username": "eve"}, 403},
		{"POST", base + "/join", nil, 404},
		{"GET", "/api/v1/search?q=swordfish&room=" + fmt.Sprint(id), nil, 403},
		{"GET", "/api/v1/files/" + file, nil, 404},
	} {
		out := eve.call(t, ts, c.method, c.path, c.body, c.status)
		if _, ok := out["error"].(map[string]any)["code"]; !ok {
			t.Errorf("%s %s: no numbered error in %v", c.method, c.path, out)
		}
	}
	uploadFile(t, ts, eve, id, "x.txt", []byte("x"), http.StatusForbidden)
	if hits := eve.call(t, ts, "GET", "/api/v1/search?q=swordfish", nil, http.StatusOK)["messages"].([]any); len(hits) != 0 {
		t.Fatalf("eve's search found %v in a room she is not in", hits)
	}
	// Without any credentials: 401.
	restCall(t, ts.URL, "", "GET", base+"/messages", nil, http.StatusUnauthorized)
}

// uploadFile posts raw bytes as a room file and returns its id.
func uploadFile(t *testing.T, ts *testServer, u chatUser, room int64, name string, body []byte, wantStatus int) string {
	t.Helper()
	status, out, _ := restDo(t, ts.URL, u.token, "POST", fmt.Sprintf("/api/v1/rooms/%d/files?name=%s", room, name), bytes.NewReader(body), "")
	if status != wantStatus {
		t.Fatalf("upload %s: %d %v, want %d", name, status, out, wantStatus)
	}
	id, _ := out["id"].(string)
	return id
}

func TestChatFiles(t *testing.T) {
	ts := startServer(t, nil)
	alice := signup(t, ts.URL, "alice")
	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "files"}, http.StatusCreated)
	id := int64(room["id"].(float64))

	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 64)...)
	html := []byte("<html><script>alert(1)</script></html>")
	for _, c := range []struct {
		name, wantType, wantDisp string
		body                     []byte
	}{
		{"pic.png", "image/png", `inline; filename=pic.png`, png},
		// Named .png but HTML inside: sniffed as HTML, served as a download.
		{"evil.png", "application/octet-stream", `attachment; filename=evil.png`, html},
	} {
		fid := uploadFile(t, ts, alice, id, c.name, c.body, http.StatusCreated)
		req, _ := http.NewRequest("GET", ts.URL+"/api/v1/files/"+fid, nil)
		req.Header.Set("Authorization", "Bearer "+alice.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != 200 || !bytes.Equal(got, c.body) || h.Get("Content-Type") != c.wantType ||
			h.Get("Content-Disposition") != c.wantDisp || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("download %s: %d type %q disposition %q nosniff %q", c.name, resp.StatusCode, h.Get("Content-Type"),
				h.Get("Content-Disposition"), h.Get("X-Content-Type-Options"))
		}
	}
	files := alice.call(t, ts, "GET", fmt.Sprintf("/api/v1/rooms/%d/files", id), nil, http.StatusOK)["files"].([]any)
	if len(files) != 2 || files[1].(map[string]any)["content_type"] != "image/png" {
		t.Fatalf("files: %v", files)
	}
	uploadFile(t, ts, alice, id, "../../etc/passwd", []byte("x"), http.StatusBadRequest)
	uploadFile(t, ts, alice, id, "empty.txt", nil, http.StatusBadRequest)
	uploadFile(t, ts, alice, id, "big.bin", bytes.Repeat([]byte("x"), 10<<20+1), http.StatusRequestEntityTooLarge)
	if n := len(alice.call(t, ts, "GET", fmt.Sprintf("/api/v1/rooms/%d/files", id), nil, http.StatusOK)["files"].([]any)); n != 2 {
		t.Fatalf("%d files after refused uploads, want 2", n)
	}
}

func TestChatValidationErrors(t *testing.T) {
	ts := startServer(t, nil)
	alice := signup(t, ts.URL, "alice")
	room := alice.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "v"}, http.StatusCreated)
	base := fmt.Sprintf("/api/v1/rooms/%d", int64(room["id"].(float64)))
	for _, c := range []struct {
		method, path string
		body         any
		status, code int
	}{
		{"POST", "/api/v1/rooms", map[string]any{"name": "bad name"}, 400, 101},
		{"POST", "/api/v1/rooms", map[string]any{"name": "ok", "kind": "direct"}, 400, 101},
		{"POST", "/api/v1/rooms", map[string]any{"name": "ok", "title": strings.Repeat("t", 101)}, 400, 101},
		{"POST", "/api/v1/rooms", map[string]any{"name": "V"}, 409, 118},
		{"POST", base + "/messages", map[string]any{"text": strings.Repeat("x", 4001)}, 400, 101},
		{"POST", base + "/messages", map[string]any{"text": "a\u001bb"}, 400, 101},
		{"POST", base + "/messages", []int{1}, 400, 101},
		{"GET", base + "/messages?before=abc", nil, 400, 101},
		{"GET", base + "/messages?limit=5000", nil, 400, 101},
		{"GET", "/api/v1/rooms/0/messages", nil, 400, 101},
		{"GET", "/api/v1/rooms/12abc", nil, 400, 101},
		{"PATCH", base + "/messages/1", map[string]any{"text": "x"}, 404, 117},
		{"PUT", base + "/members/nobody/role", map[string]any{"role": "admin"}, 404, 117},
		{"POST", "/api/v1/direct/nobody", nil, 404, 117},
		{"GET", "/api/v1/search?q=", nil, 400, 101},
	} {
		out := alice.call(t, ts, c.method, c.path, c.body, c.status)
		if e, _ := out["error"].(map[string]any); e == nil || num(e["code"]) != uint64(c.code) || e["message"] == "" {
			t.Errorf("%s %s: %v, want error %d with a message", c.method, c.path, out, c.code)
		}
	}
}

// TestChatCrashKeepsAcknowledgedMessages builds the sori binary, runs
// `sori serve`, posts messages from concurrent senders, kills the process
// with SIGKILL while they are still posting, restarts it on the same data
// dir and checks that every acknowledged message is there, over REST and
// for a client resuming from offset 0.
func TestChatCrashKeepsAcknowledgedMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sori")
	build := exec.Command("go", "build", "-o", bin, "github.com/sori-dev/sori/cmd/sori")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	base, stop := runSori(t, bin, data)

	alice := signup(t, base, "alice")
	room := restCall(t, base, alice.token, "POST", "/api/v1/rooms", map[string]any{"name": "durable"}, http.StatusCreated)
	id := int64(room["id"].(float64))

	type ack struct {
		seq  uint64
		text string
	}
	var (
		mu    sync.Mutex
		acked []ack
		wg    sync.WaitGroup
	)
	enough := make(chan struct{})
	var once sync.Once
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				text := fmt.Sprintf("w%d-%d", w, i)
				b, _ := json.Marshal(map[string]any{"text": text})
				req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/rooms/%d/messages", base, id), bytes.NewReader(b))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+alice.token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the server is gone
				}
				var out map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					return
				}
				mu.Lock()
				acked = append(acked, ack{num(out["seq"]), text})
				if len(acked) >= 300 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	<-enough
	stop() // SIGKILL while the senders are still posting
	wg.Wait()
	t.Logf("%d messages acknowledged before kill -9", len(acked))

	base, _ = runSori(t, bin, data)
	var msgs []any
	for after := uint64(0); ; {
		page := restCall(t, base, alice.token, "GET", fmt.Sprintf("/api/v1/rooms/%d/messages?after=%d&limit=1000", id, after), nil, http.StatusOK)["messages"].([]any)
		if len(page) == 0 {
			break
		}
		msgs = append(msgs, page...)
		after = num(page[len(page)-1].(map[string]any)["seq"])
	}
	stored := map[uint64]string{}
	for _, m := range msgs {
		mm := m.(map[string]any)
		stored[num(mm["seq"])] = mm["text"].(string)
	}
	for _, a := range acked {
		if stored[a.seq] != a.text {
			t.Fatalf("acknowledged message %q (seq %d) lost after kill -9: found %q", a.text, a.seq, stored[a.seq])
		}
	}
	// The log has no gap: seqs 1..N.
	for i := range uint64(len(stored)) {
		if _, ok := stored[i+1]; !ok {
			t.Fatalf("seq %d missing among %d stored messages", i+1, len(stored))
		}
	}

	// A client resuming from the start gets every message from the store.
	ts := &testServer{URL: base, WSURL: "ws" + strings.TrimPrefix(base, "http") + "/ws"}
	cl := connectChat(t, ts, alice)
	res := cl.call(map[string]any{"op": "subscribe", "channel": fmt.Sprintf("chat:%d", id), "recover": true, "epoch": room["epoch"], "offset": 0})
	pubs, _ := res["publications"].([]any)
	if res["recovered"] != true || len(pubs) != len(stored) || num(res["offset"]) != uint64(len(stored)) {
		t.Fatalf("resume after restart: recovered=%v, %d publications, offset %v; want all %d", res["recovered"], len(pubs), res["offset"], len(stored))
	}
	for i, p := range pubs {
		pm := p.(map[string]any)
		if num(pm["offset"]) != uint64(i+1) || pm["data"].(map[string]any)["text"] != stored[uint64(i+1)] {
			t.Fatalf("resumed publication %d: %v", i, pm)
		}
	}
}

// runSori starts the binary on a random loopback port (no free-port guess
// another process could take first) with the embedded TURN server off (not
// under test; port 3478 may be held by another suite: CI's node lane runs
// servers beside this one) and returns its URL once it logs that it listens.
func runSori(t *testing.T, bin, data string) (baseURL string, stop func()) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0", "--turn=false")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The scanner reads stderr to its end, so the child never blocks on a
	// full pipe; its end means the child exited. log is read after that.
	addr := make(chan string, 1)
	exited := make(chan struct{})
	var log strings.Builder
	go func() {
		defer close(exited)
		re := regexp.MustCompile(`msg="sori listening" addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if log.Len() < 64<<10 {
				log.WriteString(sc.Text() + "\n")
			}
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Kill() // SIGKILL: no shutdown code runs
			<-exited
			_ = cmd.Wait()
		})
	}
	t.Cleanup(stop)
	select {
	case a := <-addr:
		return "http://" + a, stop
	case <-exited:
		stop()
		t.Fatalf("sori serve exited before listening:\n%s", log.String())
	case <-time.After(30 * time.Second):
		stop()
		t.Fatalf("sori serve did not report its address in 30 s:\n%s", log.String())
	}
	return "", nil
}
