package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// `sori lab rtc`: what a call costs each participant and the server, in a
// peer-to-peer mesh and through the SFU, for N = 2…8 participants. Each
// participant is a pion peer with its own Sori connection; it joins a chat
// room's call through the server's signaling and sends synthetic media (a
// VP8-shaped video stream at a fixed bitrate and an Opus-shaped audio
// stream). Uplink and downlink are the bytes its peer connections sent and
// received (pion's transport counters: RTP, RTCP and DTLS, measured at the
// peer, which is where mesh traffic is seen at all: it goes peer to peer on
// loopback). Server CPU is the child server's process_cpu_seconds_total.

// RTCConfig is one `sori lab rtc` run. Zero values take the defaults listed.
type RTCConfig struct {
	Min, Max     int           // participants; default 2 and 8
	VideoBitrate int           // bit/s of each participant's video; default 500,000
	Warmup       time.Duration // after everyone receives everyone; default 2s
	Window       time.Duration // measurement window per N and mode; default 5s
	// ServerCommand starts the child servers (one per mode); default this
	// executable with "serve".
	ServerCommand []string
	Progress      io.Writer
}

// RTCResult is one N in one mode. Rates are means over the participants.
type RTCResult struct {
	Mode         string  `json:"mode"` // mesh or sfu
	Participants int     `json:"participants"`
	UpBytesPS    float64 `json:"uplink_bytes_per_s"`
	DownBytesPS  float64 `json:"downlink_bytes_per_s"`
	ServerCPU    float64 `json:"server_cpu_cores"` // CPU seconds per second
	// Paced is the video the senders wrote in the window as a fraction of
	// their bitrate: below ~0.9 the lab machine could not keep up, and the
	// row measures the machine, not the call.
	Paced float64 `json:"paced"`
	Error string  `json:"error,omitempty"`
}

// RTCReport is a `sori lab rtc` run.
type RTCReport struct {
	VideoBitrate int         `json:"video_bitrate"`
	Window       string      `json:"window"`
	Results      []RTCResult `json:"results"`
}

func (c *RTCConfig) setDefaults() error {
	if c.Min < 2 {
		c.Min = 2
	}
	if c.Max <= 0 {
		c.Max = 8
	}
	if c.Max < c.Min {
		return fmt.Errorf("lab rtc: --max %d is below --min %d", c.Max, c.Min)
	}
	if c.VideoBitrate <= 0 {
		c.VideoBitrate = 200_000
	}
	if c.Warmup <= 0 {
		c.Warmup = 2 * time.Second
	}
	if c.Window <= 0 {
		c.Window = 5 * time.Second
	}
	if len(c.ServerCommand) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("lab rtc: find own executable: %w", err)
		}
		c.ServerCommand = []string{exe, "serve"}
	}
	return nil
}

// RunRTC measures mesh and SFU calls for every N. The mesh server has the
// SFU off and a mesh limit of Max; the SFU server has --mesh-limit 2, so
// that every call of 3 or more runs on the SFU (a call of 2 stays a mesh
// there: the mesh limit cannot be lower, so N = 2 has no SFU row).
func RunRTC(ctx context.Context, cfg RTCConfig) (*RTCReport, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	rep := &RTCReport{VideoBitrate: cfg.VideoBitrate, Window: cfg.Window.String()}
	for _, mode := range []string{"mesh", "sfu"} {
		extra := []string{"--mesh-limit", strconv.Itoa(cfg.Max)}
		if mode == "sfu" {
			extra = []string{"--mesh-limit", "2", "--sfu-listen", "127.0.0.1:0", "--sfu-limit", strconv.Itoa(max(cfg.Max, 3))}
		}
		child := Config{ServerCommand: append(append(append([]string(nil), cfg.ServerCommand...), extra...),
			"--login-rate", "100000", "--login-burst", "100000")}
		stop, err := startChild(ctx, &child)
		if err != nil {
			return rep, err
		}
		users, err := rtcUsers(ctx, child.URL, cfg.Max)
		if err != nil {
			stop()
			return rep, err
		}
		for n := cfg.Min; n <= cfg.Max; n++ {
			if mode == "sfu" && n < 3 {
				continue
			}
			res := runRTC(ctx, &cfg, child.URL, mode, users[:n])
			rep.Results = append(rep.Results, res)
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "%-4s N=%d  up %8.0f B/s  down %8.0f B/s  server CPU %.3f cores  paced %.2f %s\n",
					mode, n, res.UpBytesPS, res.DownBytesPS, res.ServerCPU, res.Paced, res.Error)
			}
			if ctx.Err() != nil {
				stop()
				return rep, ctx.Err()
			}
		}
		stop()
	}
	return rep, nil
}

type rtcUser struct{ name, token string }

// rtcUsers signs up n users (not counted: setup).
func rtcUsers(ctx context.Context, base string, n int) ([]rtcUser, error) {
	var out []rtcUser
	for i := range n {
		name := "lab" + strconv.Itoa(i)
		var res struct{ Token string }
		if err := restJSON(ctx, base, "", "POST", "/api/v1/auth/signup",
			map[string]string{"username": name, "password": "lab-password-" + name, "kind": "api"}, &res); err != nil {
			return nil, err
		}
		out = append(out, rtcUser{name: name, token: res.Token})
	}
	return out, nil
}

func restJSON(ctx context.Context, base, token, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("lab rtc: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("lab rtc: %s %s: %s %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// runRTC runs one call of len(users) participants in a fresh room.
func runRTC(ctx context.Context, cfg *RTCConfig, base, mode string, users []rtcUser) RTCResult {
	res := RTCResult{Mode: mode, Participants: len(users)}
	fail := func(err error) RTCResult { res.Error = err.Error(); return res }
	setup, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var room struct{ ID int64 }
	name := fmt.Sprintf("lab-%s-%d-%d", mode, len(users), time.Now().UnixNano()%1e9)
	if err := restJSON(setup, base, users[0].token, "POST", "/api/v1/rooms", map[string]any{"name": name, "kind": "private"}, &room); err != nil {
		return fail(err)
	}
	for _, u := range users[1:] {
		if err := restJSON(setup, base, users[0].token, "POST", fmt.Sprintf("/api/v1/rooms/%d/members", room.ID), map[string]any{"username": u.name}, nil); err != nil {
			return fail(err)
		}
	}
	roomID := strconv.FormatInt(room.ID, 10)
	var peers []*rtcPeer
	defer func() {
		for _, p := range peers {
			p.close()
		}
	}()
	mediaCtx, stopMedia := context.WithCancel(ctx)
	defer stopMedia()
	for _, u := range users {
		p, err := newRTCPeer(setup, base, u, roomID)
		if err != nil {
			return fail(err)
		}
		peers = append(peers, p)
		if err := p.join(setup); err != nil {
			return fail(err)
		}
		go p.sendMedia(mediaCtx, cfg.VideoBitrate)
	}
	// Everyone receives everyone's video, then the warm-up.
	for _, p := range peers {
		for p.videoFrom() < len(users)-1 {
			select {
			case <-setup.Done():
				return fail(fmt.Errorf("lab rtc: %s receives video from %d of %d others within 60s", p.user.name, p.videoFrom(), len(users)-1))
			case <-time.After(50 * time.Millisecond): // poll the peers' receive counters
			}
		}
	}
	if !sleepCtx(ctx, cfg.Warmup) {
		return fail(ctx.Err())
	}
	cpu0, _ := serverCPU(http.DefaultClient, base)
	t0 := time.Now()
	up0, down0 := totals(peers)
	var sent0 int64
	for _, p := range peers {
		sent0 += p.sent.Load()
	}
	if !sleepCtx(ctx, cfg.Window) {
		return fail(ctx.Err())
	}
	up1, down1 := totals(peers)
	dt := time.Since(t0).Seconds()
	var sent1 int64
	for _, p := range peers {
		sent1 += p.sent.Load()
	}
	res.Paced = float64(sent1-sent0) * 8 / dt / float64(len(peers)) / float64(cfg.VideoBitrate)
	cpu1, err := serverCPU(http.DefaultClient, base)
	if err == nil {
		res.ServerCPU = (cpu1 - cpu0) / dt
	}
	res.UpBytesPS = float64(up1-up0) / dt / float64(len(peers))
	res.DownBytesPS = float64(down1-down0) / dt / float64(len(peers))
	return res
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func totals(peers []*rtcPeer) (up, down uint64) {
	for _, p := range peers {
		u, d := p.bytes()
		up += u
		down += d
	}
	return up, down
}

// rtcPeer is one participant: a Sori connection and its peer connections
// (one per other participant in a mesh, one to "sfu" on the SFU).
type rtcPeer struct {
	user  rtcUser
	room  string
	ws    *websocket.Conn
	api   *webrtc.API
	video *webrtc.TrackLocalStaticRTP
	audio *webrtc.TrackLocalStaticRTP

	readDone chan struct{} // closed when readLoop ends: no more pushes
	sent     atomic.Int64  // video payload bytes written (once per packet, whatever the bindings)
	wmu      sync.Mutex    // serializes writes to ws
	nextID   atomic.Uint64
	replies  sync.Map // id -> chan map[string]any

	mu      sync.Mutex
	me      string
	ice     []webrtc.ICEServer
	pcs     map[string]*rtcConn // by remote participant id, or "sfu"
	gotFrom map[string]bool     // remote stream ids that delivered video
}

type rtcConn struct {
	pc    *webrtc.PeerConnection
	queue chan map[string]any // signals, applied in order
	done  chan struct{}       // closed with the connection: ends applySignals

	// mu serializes every negotiation call on pc with its Close. pion's
	// SetLocalDescription checks for a closed connection only on entry and
	// creates the ICE agent at its end; a Close in between found no agent to
	// close, and the agent made afterwards kept its task loop running for
	// good (an offer racing enterSFU or close; goleak caught it in CI).
	mu      sync.Mutex
	closed  bool                      // guarded by mu
	pending []webrtc.ICECandidateInit // guarded by mu: candidates before the remote description
}

// negotiate runs fn on the peer connection unless it is closed (false).
// Signalling goes out after it returns: fn must not wait on the network.
func (c *rtcConn) negotiate(fn func(pc *webrtc.PeerConnection)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	fn(c.pc)
	return true
}

// close closes the peer connection once no negotiation call is running on
// it, and ends applySignals. Safe to call more than once.
func (c *rtcConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	_ = c.pc.Close()
	close(c.done)
}

func newRTCPeer(ctx context.Context, base string, u rtcUser, room string) (*rtcPeer, error) {
	var tok struct{ Token string }
	if err := restJSON(ctx, base, u.token, "POST", "/api/v1/auth/connect-token", nil, &tok); err != nil {
		return nil, err
	}
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", nil)
	if err != nil {
		return nil, fmt.Errorf("lab rtc: dial: %w", err)
	}
	ws.SetReadLimit(1 << 20)
	p, err := newRTCMedia(u)
	if err != nil {
		ws.CloseNow()
		return nil, err
	}
	p.room, p.ws = room, ws
	go p.readLoop()
	if _, err := p.rpcOp(ctx, map[string]any{"op": "connect", "token": tok.Token}); err != nil {
		ws.CloseNow()
		return nil, err
	}
	return p, nil
}

// newRTCMedia is a peer's media side (pion API on loopback UDP, tracks),
// without a Sori connection yet.
func newRTCMedia(u rtcUser) (*rtcPeer, error) {
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	p := &rtcPeer{user: u, api: webrtc.NewAPI(webrtc.WithSettingEngine(se)),
		pcs: map[string]*rtcConn{}, gotFrom: map[string]bool{}, readDone: make(chan struct{})}
	var err error
	if p.video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "camera", u.name); err != nil {
		return nil, err
	}
	if p.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", u.name); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *rtcPeer) readLoop() {
	defer close(p.readDone)
	for {
		_, b, err := p.ws.Read(context.Background())
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		if id, ok := m["id"].(float64); ok {
			if ch, ok := p.replies.LoadAndDelete(uint64(id)); ok {
				ch.(chan map[string]any) <- m
			}
			continue
		}
		if m["push"] == "call" {
			p.onPush(m)
		}
	}
}

// rpcOp sends a command and waits for its reply.
func (p *rtcPeer) rpcOp(ctx context.Context, cmd map[string]any) (map[string]any, error) {
	id := p.nextID.Add(1)
	ch := make(chan map[string]any, 1)
	p.replies.Store(id, ch)
	cmd["id"] = id
	b, _ := json.Marshal(cmd)
	p.wmu.Lock()
	err := p.ws.Write(ctx, websocket.MessageText, b)
	p.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("lab rtc: %v: %w", cmd["op"], err)
	}
	select {
	case m := <-ch:
		if e, ok := m["error"]; ok {
			return nil, fmt.Errorf("lab rtc: %v %v: %v", cmd["op"], cmd["method"], e)
		}
		r, _ := m["result"].(map[string]any)
		return r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("lab rtc: %v: %w", cmd["op"], ctx.Err())
	case <-p.readDone:
		return nil, fmt.Errorf("lab rtc: %v: the connection closed", cmd["op"])
	}
}

func (p *rtcPeer) signal(to string, data map[string]any) {
	data["room"], data["to"] = p.room, to
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = p.rpcOp(ctx, map[string]any{"op": "rpc", "method": "call.signal", "data": data}) // a lost signal shows as missing media
}

func (p *rtcPeer) join(ctx context.Context) error {
	res, err := p.rpcOp(ctx, map[string]any{"op": "rpc", "method": "call.join", "data": map[string]any{"room": p.room}})
	if err != nil {
		return err
	}
	b, _ := json.Marshal(res)
	var jr struct {
		Participant  string
		Mode         string
		Participants []struct{ ID string }
		ICEServers   []webrtc.ICEServer `json:"ice_servers"`
	}
	if err := json.Unmarshal(b, &jr); err != nil {
		return fmt.Errorf("lab rtc: join result: %w", err)
	}
	p.mu.Lock()
	p.me, p.ice = jr.Participant, jr.ICEServers
	p.mu.Unlock()
	if jr.Mode == "sfu" {
		p.enterSFU()
		return nil
	}
	// The later joiner offers to everyone already there.
	for _, o := range jr.Participants {
		p.connect(o.ID, true)
	}
	return nil
}

// connect opens a peer connection to remote (a participant or "sfu") with
// our tracks; offer makes the first offer.
func (p *rtcPeer) connect(remote string, offer bool) *rtcConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.pcs[remote]; c != nil {
		return c
	}
	pc, err := p.api.NewPeerConnection(webrtc.Configuration{ICEServers: p.ice})
	if err != nil {
		return nil
	}
	c := &rtcConn{pc: pc, queue: make(chan map[string]any, 64), done: make(chan struct{})}
	p.pcs[remote] = c
	pc.OnICECandidate(func(ci *webrtc.ICECandidate) {
		if ci != nil {
			go p.signal(remote, map[string]any{"candidate": ci.ToJSON()})
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		from := tr.StreamID()
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				p.mu.Lock()
				p.gotFrom[from] = true
				p.mu.Unlock()
			}
		}
	})
	go p.applySignals(remote, c)
	if offer {
		go func() {
			if o, ok := p.offer(c); ok {
				p.signal(remote, map[string]any{"description": o})
			}
		}()
	}
	return c
}

// offer adds our tracks to c and sets a fresh offer as its local
// description; false when c was closed first or pion refused.
func (p *rtcPeer) offer(c *rtcConn) (webrtc.SessionDescription, bool) {
	var o webrtc.SessionDescription
	var err error
	if !c.negotiate(func(pc *webrtc.PeerConnection) {
		_, _ = pc.AddTrack(p.video)
		_, _ = pc.AddTrack(p.audio)
		if o, err = pc.CreateOffer(nil); err == nil {
			err = pc.SetLocalDescription(o)
		}
	}) {
		return o, false
	}
	return o, err == nil
}

func (p *rtcPeer) enterSFU() {
	p.mu.Lock()
	mesh := p.pcs
	p.pcs = map[string]*rtcConn{}
	p.mu.Unlock()
	for _, c := range mesh {
		c.close() // before the measurement: its bytes do not count
	}
	p.connect("sfu", true)
}

func (p *rtcPeer) onPush(m map[string]any) {
	switch m["event"] {
	case "mode":
		if m["mode"] == "sfu" {
			p.enterSFU()
		}
	case "signal":
		from, _ := m["from"].(string)
		c := p.connect(from, false) // a newcomer's first offer opens the connection
		if c != nil {
			select {
			case c.queue <- m:
			case <-c.done:
			}
		}
	}
}

// applySignals applies one connection's signals in order: answers offers
// (adding our tracks to a peer's first offer) and adds candidates.
func (p *rtcPeer) applySignals(remote string, c *rtcConn) {
	for {
		var m map[string]any
		select {
		case m = <-c.queue:
		case <-c.done:
			return
		}
		if d, ok := m["description"]; ok {
			var desc webrtc.SessionDescription
			b, _ := json.Marshal(d)
			if json.Unmarshal(b, &desc) != nil {
				continue
			}
			var answer *webrtc.SessionDescription
			if !c.negotiate(func(*webrtc.PeerConnection) { answer = p.applyDescription(c, remote, desc) }) {
				return
			}
			if answer != nil {
				p.signal(remote, map[string]any{"description": *answer})
			}
		}
		if cand, ok := m["candidate"]; ok {
			var ci webrtc.ICECandidateInit
			b, _ := json.Marshal(cand)
			if json.Unmarshal(b, &ci) != nil {
				continue
			}
			if !c.negotiate(func(pc *webrtc.PeerConnection) {
				if pc.RemoteDescription() == nil {
					c.pending = append(c.pending, ci)
				} else {
					_ = pc.AddICECandidate(ci)
				}
			}) {
				return
			}
		}
	}
}

// applyDescription sets a remote description on c (under c.mu) with the
// candidates that came before it; for an offer it returns the answer to
// send (adding our tracks to a peer's first offer), nil otherwise.
func (p *rtcPeer) applyDescription(c *rtcConn, remote string, desc webrtc.SessionDescription) *webrtc.SessionDescription {
	if c.pc.SetRemoteDescription(desc) != nil {
		return nil
	}
	for _, ci := range c.pending {
		_ = c.pc.AddICECandidate(ci)
	}
	c.pending = nil
	if desc.Type != webrtc.SDPTypeOffer {
		return nil
	}
	if remote != "sfu" && len(c.pc.GetSenders()) == 0 {
		_, _ = c.pc.AddTrack(p.video)
		_, _ = c.pc.AddTrack(p.audio)
	}
	a, err := c.pc.CreateAnswer(nil)
	if err != nil || c.pc.SetLocalDescription(a) != nil {
		return nil
	}
	return &a
}

// sendMedia writes synthetic video at bitrate (1,000-byte packets, every
// one starting a VP8 key frame, so that an SFU forwards from any packet)
// and 20-ms audio packets of 80 bytes, until ctx ends.
func (p *rtcPeer) sendMedia(ctx context.Context, bitrate int) {
	const size = 1000
	video := make([]byte, size)
	copy(video, []byte{0x10, 0x00, 0x9d, 0x01, 0x2a})
	audio := make([]byte, 80)
	interval := time.Duration(float64(time.Second) * size * 8 / float64(bitrate))
	// A ticker drops the ticks a starved sender misses: Paced shows it.
	vt, at := time.NewTicker(interval), time.NewTicker(20*time.Millisecond)
	defer vt.Stop()
	defer at.Stop()
	var vseq, aseq uint16
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-vt.C:
			vseq++
			ts := uint32(time.Since(start).Seconds() * 90000)
			_ = p.video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: vseq, Timestamp: ts}, Payload: video})
			p.sent.Add(size)
		case <-at.C:
			aseq++
			_ = p.audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: aseq, Timestamp: uint32(aseq) * 960}, Payload: audio})
		}
	}
}

// videoFrom is how many others' video has arrived.
func (p *rtcPeer) videoFrom() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.gotFrom)
}

// bytes sums what every peer connection of p sent and received (transport
// stats: bytes at the ICE transport, so RTP, RTCP and DTLS).
func (p *rtcPeer) bytes() (up, down uint64) {
	p.mu.Lock()
	var conns []*rtcConn
	for _, c := range p.pcs {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		for _, s := range c.pc.GetStats() {
			if ts, ok := s.(webrtc.TransportStats); ok {
				up += ts.BytesSent
				down += ts.BytesReceived
			}
		}
	}
	return up, down
}

// close ends the connection first, so that no push can reach a signal
// queue any more, then the peer connections and their queues.
func (p *rtcPeer) close() {
	_ = p.ws.Close(websocket.StatusNormalClosure, "")
	p.ws.CloseNow()
	<-p.readDone
	p.mu.Lock()
	conns := p.pcs
	p.pcs = map[string]*rtcConn{}
	p.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}
