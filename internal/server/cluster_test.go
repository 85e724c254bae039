package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/server"
	"github.com/sori-dev/sori/internal/store/postgres/pgtest"
)

// A node in cluster mode must not generate its own secrets: each node would
// get different ones and tokens would fail on the others.
func TestClusterModeRefusesGeneratedSecrets(t *testing.T) {
	for name, mutate := range map[string]func(*config.Config){
		"no token secret": func(c *config.Config) { c.APIKeys = []string{"k"} },
		"no API key":      func(c *config.Config) { c.TokenSecret = strings.Repeat("s", 32) },
	} {
		cfg := server.DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.TURNEnabled = false // not under test; port 3478 may be taken
		cfg.Postgres = "host=127.0.0.1 port=1 dbname=never-reached"
		mutate(&cfg)
		_, err := server.New(cfg, nil)
		if !errors.Is(err, config.ErrClusterSecrets) {
			t.Fatalf("%s: New = %v, want ErrClusterSecrets", name, err)
		}
		if _, err := os.Stat(filepath.Join(cfg.DataDir, config.SecretsFile)); !os.IsNotExist(err) {
			t.Fatalf("%s: secrets were generated in the data dir (%v)", name, err)
		}
	}
}

// Two nodes with --postgres on one database, each with its own data dir:
// accounts, tokens, rooms, memberships, messages, search and uploaded files
// are shared, a
// room's seqs stay gap-free with both nodes posting at once, and a member
// removed on one node can no longer post on the other once the removal
// returned.
func TestTwoNodesShareThePostgresStore(t *testing.T) {
	dsn := pgtest.Schema(t)
	cluster := func(c *config.Config) { c.Postgres = dsn }
	a, b := startServer(t, cluster), startServer(t, cluster)

	alice := signup(t, a.URL, "alice")
	bob := signup(t, b.URL, "bob")
	alice.call(t, b, "GET", "/api/v1/rooms", nil, http.StatusOK) // a token minted on A works on B

	room := alice.call(t, a, "POST", "/api/v1/rooms", map[string]any{"name": "team", "kind": "private"}, http.StatusCreated)
	id := int64(room["id"].(float64))
	alice.call(t, a, "POST", fmt.Sprintf("/api/v1/rooms/%d/members", id), map[string]any{"username": "bob"}, http.StatusCreated)

	var wg sync.WaitGroup
	for _, p := range []struct {
		u  chatUser
		ts *testServer
	}{{alice, a}, {bob, b}} {
		wg.Go(func() {
			for i := range 20 {
				p.u.call(t, p.ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", id),
					map[string]any{"text": fmt.Sprintf("%s says zebra%d", p.u.name, i)}, http.StatusCreated)
			}
		})
	}
	wg.Wait()
	page := func(ts *testServer) []any {
		return alice.call(t, ts, "GET", fmt.Sprintf("/api/v1/rooms/%d/messages?limit=100", id), nil, http.StatusOK)["messages"].([]any)
	}
	onA, onB := page(a), page(b)
	if len(onA) != 40 || mustJSON(onA) != mustJSON(onB) {
		t.Fatalf("nodes disagree on the room: A has %d messages, B %d", len(onA), len(onB))
	}
	seen := map[uint64]bool{}
	for _, m := range onA {
		seen[num(m.(map[string]any)["seq"])] = true
	}
	for q := uint64(1); q <= 40; q++ {
		if !seen[q] {
			t.Fatalf("seq %d missing: seqs are not gap-free across nodes", q)
		}
	}
	hits := bob.call(t, b, "GET", "/api/v1/search?q=zebra1*", nil, http.StatusOK)["messages"].([]any)
	if len(hits) != 22 { // zebra1 and zebra10..19, from each user
		t.Fatalf("search on B found %d messages, want 22", len(hits))
	}

	// A file uploaded to A is served by B: its bytes are in the database.
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 3000)...)
	fid := uploadFile(t, a, alice, id, "pic.png", png, http.StatusCreated)
	req, _ := http.NewRequest("GET", b.URL+"/api/v1/files/"+fid, nil)
	req.Header.Set("Authorization", "Bearer "+bob.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, png) || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("download on B of a file uploaded to A: %d, %d bytes, %q", resp.StatusCode, len(got), resp.Header.Get("Content-Type"))
	}
	if entries, _ := os.ReadDir(filepath.Join(a.cfg.DataDir, "files")); len(entries) != 0 {
		t.Fatalf("cluster upload left %d files in the node's data dir", len(entries))
	}

	alice.call(t, a, "DELETE", fmt.Sprintf("/api/v1/rooms/%d/members/bob", id), nil, http.StatusOK)
	bob.call(t, b, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", id), map[string]any{"text": "still here?"}, http.StatusForbidden)
}

// startNATS runs an embedded NATS server on a random loopback port.
func startNATS(t *testing.T) string {
	t.Helper()
	return startNATSOn(t, -1).ClientURL()
}

// startNATSOn runs an embedded NATS server on port (-1 = random).
func startNATSOn(t *testing.T, port int) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: storeDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// storeDir is the JetStream store of the test's NATS server: one per test,
// so that a restarted server finds its streams again.
func storeDir(t *testing.T) string {
	t.Helper()
	storeDirs.Lock()
	defer storeDirs.Unlock()
	if d, ok := storeDirs.m[t.Name()]; ok {
		return d
	}
	d := t.TempDir()
	storeDirs.m[t.Name()] = d
	return d
}

var storeDirs = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// A node cut off from NATS says so on /readyz, and is ready again once the
// NATS server is back.
func TestReadyzFollowsTheBus(t *testing.T) {
	dsn := pgtest.Schema(t)
	ns := startNATSOn(t, -1)
	port := ns.Addr().(*net.TCPAddr).Port
	node := startServer(t, func(c *config.Config) { c.Postgres, c.NATS = dsn, []string{ns.ClientURL()} })
	readyz := func() int {
		resp, err := http.Get(node.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitStatus := func(want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second) // only ends a broken test
		for readyz() != want {
			if time.Now().After(deadline) {
				t.Fatalf("/readyz never answered %d", want)
			}
			time.Sleep(20 * time.Millisecond) // polling an HTTP endpoint: no event to wait on
		}
	}
	waitStatus(http.StatusOK)
	ns.Shutdown()
	waitStatus(http.StatusServiceUnavailable)
	startNATSOn(t, port)
	waitStatus(http.StatusOK)
}

// Three nodes on one PostgreSQL database and one NATS server: messages
// posted on A and C at once reach a subscriber on B live, each exactly
// once and in offset order, and a resume by (epoch, offset) on any node
// returns the same history.
func TestPublicationsCrossNodes(t *testing.T) {
	dsn, natsURL := pgtest.Schema(t), startNATS(t)
	var nodes []*testServer
	for _, id := range []string{"a", "b", "c"} {
		nodes = append(nodes, startServer(t, func(c *config.Config) { c.Postgres, c.NATS, c.NodeID = dsn, []string{natsURL}, id }))
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	alice, bob := signup(t, a.URL, "alice"), signup(t, b.URL, "bob")
	room := alice.call(t, a, "POST", "/api/v1/rooms", map[string]any{"name": "team", "kind": "private"}, http.StatusCreated)
	id, ch := int64(room["id"].(float64)), room["channel"].(string)
	alice.call(t, a, "POST", fmt.Sprintf("/api/v1/rooms/%d/members", id), map[string]any{"username": "bob"}, http.StatusCreated)

	bc := connectChat(t, b, bob)
	bc.call(map[string]any{"op": "subscribe", "channel": ch})
	const perNode = 15
	var wg sync.WaitGroup
	for _, p := range []struct {
		u  chatUser
		ts *testServer
	}{{alice, a}, {bob, c}} {
		wg.Go(func() {
			for i := range perNode {
				p.u.call(t, p.ts, "POST", fmt.Sprintf("/api/v1/rooms/%d/messages", id),
					map[string]any{"text": fmt.Sprintf("%s-%d", p.u.name, i)}, http.StatusCreated)
			}
		})
	}
	wg.Wait()
	for want := uint64(1); want <= 2*perNode; want++ {
		if got := num(bc.nextPub(ch)["offset"]); got != want {
			t.Fatalf("subscriber on B got offset %d, want %d", got, want)
		}
	}
	// Nothing more was queued before the pong of a later ping.
	_, _, pushes := bc.reply(bc.send(map[string]any{"op": "ping"}))
	for _, m := range pushes {
		if m["push"] == "pub" {
			t.Fatalf("publication delivered twice: %v", m)
		}
	}

	var histories []string
	for _, ts := range nodes {
		cl := connectChat(t, ts, alice)
		res := cl.call(map[string]any{"op": "subscribe", "channel": ch, "recover": true, "epoch": room["epoch"], "offset": 0})
		if res["recovered"] != true || num(res["offset"]) != 2*perNode {
			t.Fatalf("resume on %s: recovered=%v offset %v", ts.URL, res["recovered"], res["offset"])
		}
		histories = append(histories, mustJSON(res["publications"]))
	}
	if histories[0] != histories[1] || histories[1] != histories[2] {
		t.Fatal("nodes answer a resume by (epoch, offset) differently")
	}
}
