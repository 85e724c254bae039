package sfu

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// The forwarding-cost comparison runs the server side in a child process
// (this test binary re-executed), so that its CPU time is the server's
// alone: either Sori's SFU (simulcast munging, NACK from the cache, TWCC/GCC,
// reports) or the plainest pion broadcast forwarder (one
// TrackLocalStaticRTP bound to every subscriber, pion's default
// interceptors). The clients and the load are the same for both.

func TestMain(m *testing.M) {
	if mode := os.Getenv("SORI_SFUBENCH_SERVER"); mode != "" {
		os.Exit(benchServer(mode, os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// benchMsg is one line between the test and the child server.
type benchMsg struct {
	Peer   string  `json:"peer,omitempty"`
	Join   bool    `json:"join,omitempty"`
	Signal *Signal `json:"signal,omitempty"`
	Stats  bool    `json:"stats,omitempty"`
	// in stats answers
	Forwarded uint64 `json:"forwarded,omitempty"`
	CPUNanos  int64  `json:"cpu_ns,omitempty"`
	Err       string `json:"err,omitempty"`
}

func cpuNanos() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchServer serves one room, "sfu" or "bare", over JSON lines.
func benchServer(mode string, in io.Reader, out io.Writer) int {
	var outMu sync.Mutex
	enc := json.NewEncoder(out)
	write := func(m benchMsg) {
		outMu.Lock()
		_ = enc.Encode(m)
		outMu.Unlock()
	}
	var (
		join      func(id string, send func(Signal)) (func(Signal) error, error)
		forwarded func() uint64
	)
	switch mode {
	case "sfu", "sfu-mtu":
		s, err := New(Config{UDPAddr: "127.0.0.1:0", UpgradeHold: 300 * time.Millisecond})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer s.Close()
		s.mtuCache = mode == "sfu-mtu" // the memory benchmark's baseline
		room, err := s.NewRoom(RoomConfig{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		join = func(id string, send func(Signal)) (func(Signal) error, error) {
			p, err := room.Join(id, send)
			if err != nil {
				return nil, err
			}
			return p.Signal, nil
		}
		forwarded = func() uint64 { return room.Stats().Forwarded }
	case "bare":
		b, err := newBareRoom()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		join, forwarded = b.join, b.forwarded.Load
	default:
		return 2
	}
	signals := map[string]func(Signal) error{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m benchMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			write(benchMsg{Err: err.Error()})
			continue
		}
		switch {
		case m.Stats:
			write(benchMsg{Stats: true, Forwarded: forwarded(), CPUNanos: cpuNanos()})
		case m.Join:
			id := m.Peer
			sig, err := join(id, func(s Signal) { write(benchMsg{Peer: id, Signal: &s}) })
			if err != nil {
				write(benchMsg{Peer: id, Err: err.Error()})
				continue
			}
			signals[id] = sig
		case m.Signal != nil:
			if sig := signals[m.Peer]; sig != nil {
				if err := sig(*m.Signal); err != nil {
					write(benchMsg{Peer: m.Peer, Err: err.Error()})
				}
			}
		}
	}
	return 0
}

// bareRoom is pion's broadcast example made multi-party: the publisher's
// top layer and audio each go into one TrackLocalStaticRTP bound to every
// subscriber. No layer choice, no munging; pion's default interceptors
// (NACK responder with its per-subscriber packet copies, reports, TWCC
// feedback, stats).
type bareRoom struct {
	api       *webrtc.API
	mu        sync.Mutex
	peers     map[string]*barePeer
	tracks    []*webrtc.TrackLocalStaticRTP
	subs      map[*webrtc.TrackLocalStaticRTP]*atomic.Int64
	forwarded atomic.Uint64
}

type barePeer struct {
	pc      *webrtc.PeerConnection
	send    func(Signal)
	mu      sync.Mutex
	pending bool
	queued  []webrtc.ICECandidateInit
}

func newBareRoom() (*bareRoom, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, err
	}
	// The publisher sends audio levels; accept the extension as the SFU
	// does (it is stripped before forwarding in both).
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	return &bareRoom{api: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)),
		peers: map[string]*barePeer{}, subs: map[*webrtc.TrackLocalStaticRTP]*atomic.Int64{}}, nil
}

func (b *bareRoom) join(id string, send func(Signal)) (func(Signal) error, error) {
	pc, err := b.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p := &barePeer{pc: pc, send: send}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			init := c.ToJSON()
			send(Signal{Candidate: &init})
		}
	})
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if remote.Kind() == webrtc.RTPCodecTypeVideo && remote.RID() != "f" {
			for {
				if _, _, err := remote.ReadRTP(); err != nil {
					return
				}
			}
		}
		local, err := webrtc.NewTrackLocalStaticRTP(remote.Codec().RTPCodecCapability, remote.ID(), remote.StreamID())
		if err != nil {
			return
		}
		n := &atomic.Int64{}
		b.mu.Lock()
		b.tracks = append(b.tracks, local)
		b.subs[local] = n
		var others []*barePeer
		for _, o := range b.peers {
			if o != p {
				others = append(others, o)
			}
		}
		b.mu.Unlock()
		for _, o := range others {
			b.add(o, local, n)
		}
		for {
			pkt, _, err := remote.ReadRTP()
			if err != nil {
				return
			}
			pkt.Header.Extension, pkt.Header.Extensions = false, nil
			if local.WriteRTP(pkt) == nil {
				b.forwarded.Add(uint64(n.Load()))
			}
		}
	})
	b.mu.Lock()
	b.peers[id] = p
	tracks := append([]*webrtc.TrackLocalStaticRTP(nil), b.tracks...)
	b.mu.Unlock()
	for _, t := range tracks {
		b.add(p, t, b.subs[t])
	}
	return p.signal, nil
}

func (b *bareRoom) add(p *barePeer, t *webrtc.TrackLocalStaticRTP, n *atomic.Int64) {
	sender, err := p.pc.AddTrack(t)
	if err != nil {
		return
	}
	n.Add(1)
	go func() {
		for {
			if _, _, err := sender.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pc.SignalingState() == webrtc.SignalingStateStable && p.pc.RemoteDescription() != nil {
		p.offerLocked()
	} else {
		p.pending = true
	}
}

func (p *barePeer) offerLocked() {
	o, err := p.pc.CreateOffer(nil)
	if err == nil && p.pc.SetLocalDescription(o) == nil {
		p.send(Signal{Description: p.pc.LocalDescription()})
	}
}

func (p *barePeer) signal(s Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := s.Description; d != nil {
		if err := p.pc.SetRemoteDescription(*d); err != nil {
			return err
		}
		if d.Type == webrtc.SDPTypeOffer {
			a, err := p.pc.CreateAnswer(nil)
			if err != nil {
				return err
			}
			if err := p.pc.SetLocalDescription(a); err != nil {
				return err
			}
			p.send(Signal{Description: p.pc.LocalDescription()})
		}
		for _, c := range p.queued {
			_ = p.pc.AddICECandidate(c)
		}
		p.queued = nil
		if p.pending && p.pc.SignalingState() == webrtc.SignalingStateStable {
			p.pending = false
			p.offerLocked()
		}
	}
	if s.Candidate != nil {
		if p.pc.RemoteDescription() == nil {
			p.queued = append(p.queued, *s.Candidate)
			return nil
		}
		return p.pc.AddICECandidate(*s.Candidate)
	}
	return nil
}

// benchChild is a running child server and the clients connected to it.
type benchChild struct {
	t       *testing.T
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	mu      sync.Mutex
	enc     *json.Encoder
	clients map[string]*testClient
	stats   chan benchMsg
}

func startBenchChild(t *testing.T, mode string) *benchChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SORI_SFUBENCH_SERVER="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &benchChild{t: t, cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin), clients: map[string]*testClient{}, stats: make(chan benchMsg, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m benchMsg
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			switch {
			case m.Err != "":
				t.Errorf("%s server: %s: %s", mode, m.Peer, m.Err)
			case m.Stats:
				c.stats <- m
			case m.Signal != nil:
				c.mu.Lock()
				cl := c.clients[m.Peer]
				c.mu.Unlock()
				if cl != nil {
					cl.in <- *m.Signal
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	return c
}

func (c *benchChild) send(m benchMsg) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.enc.Encode(m)
}

func (c *benchChild) client(id string) *testClient {
	return newClient(c.t, id, func(func(Signal)) (func(Signal) error, error) {
		if err := c.send(benchMsg{Peer: id, Join: true}); err != nil {
			return nil, err
		}
		return func(s Signal) error { return c.send(benchMsg{Peer: id, Signal: &s}) }, nil
	})
}

// register must run before the client's first signal can come back.
func (c *benchChild) register(cl *testClient) {
	c.mu.Lock()
	c.clients[cl.id] = cl
	c.mu.Unlock()
}

func (c *benchChild) sample() benchMsg {
	if err := c.send(benchMsg{Stats: true}); err != nil {
		c.t.Fatal(err)
	}
	select {
	case m := <-c.stats:
		return m
	case <-time.After(10 * time.Second):
		c.t.Fatal("no stats from the server")
	}
	return benchMsg{}
}

// benchRound runs one publisher (3 simulcast layers, top layer 10 packets
// per frame at 30 fps, and Opus) and n subscribers against a server in
// mode, and returns the server's CPU nanoseconds per forwarded packet over
// window, once every subscriber receives the top layer.
func benchRound(t *testing.T, mode string, n int, window time.Duration) (float64, float64) {
	child := startBenchChild(t, mode)
	var subs []*testClient
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("sub%d", i)
		cl := child.client(id)
		child.register(cl)
		cl.capDownlink(20_000_000)
		cl.subscribe()
		subs = append(subs, cl)
	}
	pub := child.client("pub")
	child.register(pub)
	pub.shape[2].packets = 10
	pub.publish(true, 20)
	for _, s := range subs {
		waitFor(t, func() string { return mode + ": subscribers on the top layer" }, 30*time.Second, func() bool {
			l, _, _, _ := s.snapshot()
			return l[2] > 50
		}, s)
	}
	a := child.sample()
	deadline := time.NewTimer(window)
	<-deadline.C
	b := child.sample()
	fwd := b.Forwarded - a.Forwarded
	if fwd == 0 {
		t.Fatalf("%s: nothing forwarded", mode)
	}
	ns := float64(b.CPUNanos-a.CPUNanos) / float64(fwd)
	rate := float64(fwd) / window.Seconds()
	return ns, rate
}

// TestForwardingCostVsPionBroadcast measures the SFU's CPU per forwarded
// RTP packet against pion's broadcast forwarder on the same load, rounds
// interleaved, and reports the ratio of the medians. It asserts nothing
// about speed (the machine is shared); it runs only with SORI_SFU_BENCH=1.
func TestForwardingCostVsPionBroadcast(t *testing.T) {
	if os.Getenv("SORI_SFU_BENCH") == "" {
		t.Skip("set SORI_SFU_BENCH=1 to measure forwarding cost")
	}
	const subs, rounds = 8, 3
	window := 4 * time.Second
	var sfu, bare []float64
	for r := 0; r < rounds; r++ {
		for _, mode := range []string{"bare", "sfu"} {
			t.Run(fmt.Sprintf("%s-%d", mode, r), func(t *testing.T) {
				ns, rate := benchRound(t, mode, subs, window)
				t.Logf("%s: %.1f µs of server CPU per forwarded packet, %.0f packets/s forwarded", mode, ns/1000, rate)
				if mode == "sfu" {
					sfu = append(sfu, ns)
				} else {
					bare = append(bare, ns)
				}
			})
		}
	}
	med := func(v []float64) float64 { sort.Float64s(v); return v[len(v)/2] }
	if len(sfu) == rounds && len(bare) == rounds {
		ms, mb := med(sfu), med(bare)
		t.Logf("median µs/packet: sfu %.1f, pion broadcast %.1f; ratio %.2f (goal <= 2); sfu %.0f packets/s per core",
			ms/1000, mb/1000, ms/mb, 1e9/ms)
	}
}
