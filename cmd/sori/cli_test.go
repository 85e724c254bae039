package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// soriBin is this package built as the `sori` binary, so that tests see what
// a user sees: exit codes, stdout and stderr.
var soriBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sori-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	soriBin = filepath.Join(dir, "sori")
	if out, err := exec.Command("go", "build", "-o", soriBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build sori: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// sori runs the binary and returns its exit code, stdout and stderr.
func sori(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, soriBin, args...)
	cmd.Dir = t.TempDir() // a stray ./sori-data lands there, not in the repo
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("sori %s: %v", strings.Join(args, " "), err)
	return 0, "", ""
}

// closedURL is an http:// URL where nothing listens.
func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

// TestCLIExitCodes: help is 0, a command line that cannot be run as written
// is 2 with the reason, a command that ran and failed is 1.
func TestCLIExitCodes(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	data := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		code   int
		output string // in stdout or stderr
		absent string // in neither
	}{
		{"no command", nil, 2, "Usage:", ""},
		{"help", []string{"help"}, 0, "sori serve", ""},
		{"--help", []string{"--help"}, 0, "sori token", ""},
		{"version", []string{"version"}, 0, "sori ", ""},
		{"unknown command", []string{"serv"}, 2, `unknown command "serv"`, ""},
		{"serve --help", []string{"serve", "--help"}, 0, "-max-connections", ""},
		{"token --help: its own flags", []string{"token", "--help"}, 0, "-channel", "max-connections"},
		{"token --help: the data dir", []string{"token", "-h"}, 0, "-data", "turn-listen"},
		{"user --help", []string{"user", "--help"}, 0, "reset-password", ""},
		{"user add --help", []string{"user", "add", "--help"}, 0, "-admin", "max-connections"},
		{"bench --help", []string{"bench", "--help"}, 0, "-conns", ""},
		{"lab --help", []string{"lab", "--help"}, 0, "-readers", ""},
		{"serve: stray argument", []string{"serve", "extra", "--listen", "127.0.0.1:0"}, 2, `unexpected argument "extra"`, "sori listening"},
		{"serve: unknown flag", []string{"serve", "--no-such-flag"}, 2, "no-such-flag", ""},
		{"token: stray argument", []string{"token", "--user", "alice", "extra", "--data", data}, 2, `unexpected argument "extra"`, ""},
		{"token: no user", []string{"token", "--data", data}, 2, "--user is required", ""},
		{"bench: stray argument", []string{"bench", "extra"}, 2, `unexpected argument "extra"`, ""},
		{"lab: stray argument", []string{"lab", "extra", "--readers", "1"}, 2, `unexpected argument "extra"`, ""},
		{"user list: stray argument", []string{"user", "list", "extra", "--data", data}, 2, "want 0 name argument(s)", ""},
		{"user: unknown subcommand", []string{"user", "remove", "bob"}, 2, `unknown command "remove"`, ""},
		{"token: missing data dir", []string{"token", "--user", "alice", "--data", missing}, 1, "does not exist", ""},
		{"user: missing data dir", []string{"user", "list", "--data", missing}, 1, "does not exist", ""},
		{"token: data dir", []string{"token", "--user", "alice", "--data", data}, 0, "eyJ", ""},
		{"bench: unreachable server", []string{"bench", "--url", closedURL(t), "--api-key", "k", "--conns", "2", "--duration", "200ms", "--drain", "100ms"}, 1, "measured nothing", ""},
	}
	for _, tt := range tests {
		code, out, errb := sori(t, tt.args...)
		both := out + errb
		if code != tt.code || !strings.Contains(both, tt.output) || (tt.absent != "" && strings.Contains(both, tt.absent)) {
			t.Errorf("%s: sori %s: exit %d, want %d with %q and without %q in:\n%s", tt.name, strings.Join(tt.args, " "),
				code, tt.code, tt.output, tt.absent, both)
		}
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a command other than serve created the data dir %s: %v", missing, err)
	}
}

// serveBinary starts `sori serve` on a random loopback port with the data
// dir and extra args, and returns its address once it logs that it listens.
func serveBinary(t *testing.T, data string, args ...string) string {
	t.Helper()
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--data", data,
		"--turn-listen", "127.0.0.1:0", "--turn-relay-address", "127.0.0.1"}, args...)
	cmd := exec.Command(soriBin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	})
	addr := make(chan string, 1)
	var log bytes.Buffer
	re := regexp.MustCompile(`msg="sori listening" addr=(\S+)`)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case a := <-addr:
		return a
	case <-exited:
		t.Fatalf("sori serve exited:\n%s", log.String())
	case <-time.After(30 * time.Second):
		t.Fatal("sori serve did not report its address in 30 s")
	}
	return ""
}

// wsClient speaks sori.v1 over a real WebSocket.
type wsClient struct {
	t      *testing.T
	ws     *websocket.Conn
	nextID int
	pushes []map[string]any // pushes read while waiting for a reply
}

func dialWS(t *testing.T, addr string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{Subprotocols: []string{"sori.v1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &wsClient{t: t, ws: ws}
}

func (c *wsClient) read() map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("frame %s: %v", b, err)
	}
	return m
}

// call sends a command and returns its result, failing on an error reply.
func (c *wsClient) call(cmd map[string]any) map[string]any {
	c.t.Helper()
	c.nextID++
	cmd["id"] = c.nextID
	b, _ := json.Marshal(cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
	for {
		m := c.read()
		if m["push"] != nil {
			c.pushes = append(c.pushes, m)
			continue
		}
		if id, _ := m["id"].(float64); int(id) != c.nextID {
			c.t.Fatalf("reply to %d while waiting for %d: %v", int(id), c.nextID, m)
		}
		if m["error"] != nil {
			c.t.Fatalf("%s: %v", b, m["error"])
		}
		res, _ := m["result"].(map[string]any)
		return res
	}
}

// TestAppNamespaceOnDefaultServer: on a server started with no
// configuration, a token from `sori token --user alice --channel 'app:*'`
// subscribes to app:lobby, publishes there, reads its history and presence,
// and resumes what it missed after a reconnect.
func TestAppNamespaceOnDefaultServer(t *testing.T) {
	data := t.TempDir()
	addr := serveBinary(t, data)
	code, tok, errb := sori(t, "token", "--user", "alice", "--channel", "app:*", "--data", data)
	if code != 0 {
		t.Fatalf("sori token: exit %d: %s", code, errb)
	}
	tok = strings.TrimSpace(tok)
	connect := func() *wsClient {
		c := dialWS(t, addr)
		c.call(map[string]any{"op": "connect", "token": tok})
		return c
	}

	a := connect()
	sub := a.call(map[string]any{"op": "subscribe", "channel": "app:lobby"})
	if sub["recoverable"] != true {
		t.Fatalf("subscribe: %v, want a recoverable channel", sub)
	}
	pub := a.call(map[string]any{"op": "publish", "channel": "app:lobby", "data": map[string]any{"text": "hello"}})
	epoch, offset := pub["epoch"], pub["offset"]
	if offset != 1.0 || epoch == "" {
		t.Fatalf("publish: %v", pub)
	}
	hist := a.call(map[string]any{"op": "history", "channel": "app:lobby", "limit": 10})
	if pubs, _ := hist["publications"].([]any); len(pubs) != 1 {
		t.Fatalf("history: %v", hist)
	}
	pres := a.call(map[string]any{"op": "presence", "channel": "app:lobby"})
	if clients, _ := pres["clients"].([]any); len(clients) != 1 {
		t.Fatalf("presence: %v", pres)
	}
	_ = a.ws.Close(websocket.StatusNormalClosure, "")

	// While alice is away, another connection publishes twice.
	b := connect()
	b.call(map[string]any{"op": "subscribe", "channel": "app:lobby"})
	for _, text := range []string{"missed 1", "missed 2"} {
		b.call(map[string]any{"op": "publish", "channel": "app:lobby", "data": map[string]any{"text": text}})
	}

	a = connect()
	res := a.call(map[string]any{"op": "subscribe", "channel": "app:lobby", "recover": true, "epoch": epoch, "offset": offset})
	pubs, _ := res["publications"].([]any)
	if res["recovered"] != true || len(pubs) != 2 {
		t.Fatalf("resume: %v, want both missed publications", res)
	}
	for i, p := range pubs {
		if got := p.(map[string]any)["data"].(map[string]any)["text"]; got != fmt.Sprintf("missed %d", i+1) {
			t.Errorf("resumed publication %d: %v", i, p)
		}
	}
}

// childOf returns the pid of a process whose parent is ppid, or 0.
func childOf(ppid int) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces, so split after ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == fmt.Sprint(ppid) {
			return pid
		}
	}
	return 0
}

// alive reports whether pid runs (a zombie has exited).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// TestLabChildDiesWithParent: when `sori lab` is killed without a chance to
// clean up, its child server goes too.
func TestLabChildDiesWithParent(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc (Linux)")
	}
	lab := exec.Command(soriBin, "lab", "--readers", "1", "--messages", "100000", "--rate", "5", "--transports", "websocket")
	lab.Dir = t.TempDir()
	stderr, err := lab.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.Start(); err != nil {
		t.Fatal(err)
	}
	labDone := make(chan struct{})
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "child server listening at ") {
				close(listening)
			}
		}
		_ = lab.Wait()
		close(labDone)
	}()
	t.Cleanup(func() { _ = lab.Process.Kill(); <-labDone })
	// Once the child listens it has nothing more to log: it cannot die of
	// SIGPIPE on the dead parent's pipe, only of the parent-death signal.
	select {
	case <-listening:
	case <-labDone:
		t.Fatal("sori lab exited before its child server listened")
	}
	child := childOf(lab.Process.Pid)
	if child == 0 {
		t.Fatal("sori lab has no child server")
	}
	deadline := time.Now().Add(30 * time.Second)
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	if err := lab.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-labDone
	for alive(child) && time.Now().Before(deadline.Add(30*time.Second)) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(child) {
		t.Fatalf("the child server %d outlived its killed parent", child)
	}
}

// TestServeRaisesOpenFilesLimit: started with a soft limit below its hard
// limit, `sori serve` runs with the hard limit and says so in its log.
func TestServeRaisesOpenFilesLimit(t *testing.T) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Max < 2048 {
		t.Skipf("hard open-files limit %d: nothing to raise to", l.Max)
	}
	cmd := exec.Command("sh", "-c", `ulimit -Sn 1024 && exec "$0" "$@"`, soriBin, "serve", "--listen", "127.0.0.1:0",
		"--data", t.TempDir(), "--turn=false")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	want := fmt.Sprintf("soft=%d hard=%d", l.Max, l.Max)
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "open-files limit") {
			if !strings.Contains(sc.Text(), want) {
				t.Fatalf("log line %q, want %s", sc.Text(), want)
			}
			return
		}
		if strings.Contains(sc.Text(), "sori listening") {
			break
		}
	}
	t.Fatal("sori serve did not log its open-files limit")
}
