package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Config configures an SFU.
type Config struct {
	// UDPAddr is the one UDP address every peer connection of the node
	// shares (ICE UDP mux), e.g. ":7882"; "127.0.0.1:0" picks a free port.
	UDPAddr string
	// TCP also accepts ICE over TCP (RFC 6544: the SFU's candidates are
	// passive TCP ones) on the same port number as UDPAddr, for clients
	// whose network blocks UDP but lets them out on that TCP port. UDP is
	// still preferred: ICE ranks TCP candidates below UDP ones.
	TCP bool
	// NAT1To1IPs are public addresses announced in host candidates instead
	// of the local one, for a node behind 1:1 NAT (most cloud VMs).
	NAT1To1IPs []string
	// InitialBitrate is a new subscriber's bandwidth estimate before any
	// feedback, in bit/s; default 1,500,000.
	InitialBitrate int
	// Tick is how often layers are re-allocated and speakers re-ranked;
	// default 500 ms.
	Tick time.Duration
	// UpgradeHold is how long a subscriber's budget must hold the next
	// layer before it is upgraded to it; default 2 s. Downgrades are
	// immediate.
	UpgradeHold time.Duration
	// FanOutChunk is how many down tracks one goroutine writes each packet
	// of a track to: a track with more subscribers (a broadcast) is written
	// by several goroutines in chunks of this size; default 32 (a write
	// costs tens of microseconds, so one goroutine cannot feed hundreds).
	FanOutChunk int
	// ICEGrace is how long a peer connection may stay ICE "disconnected"
	// before the SFU sends an ICE-restart offer (on "failed" it sends one
	// at once); default 5 s. pion reports "disconnected" after 5 s without
	// traffic from the client.
	ICEGrace time.Duration
	// ICERetry is how long the SFU waits for a restart to reconnect before
	// it sends another, doubling up to 8× for each attempt in a row;
	// default 10 s.
	ICERetry time.Duration
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
}

// SFU is the media plane of one node: the shared UDP port and the rooms.
// It is safe for concurrent use.
type SFU struct {
	cfg      Config
	log      *slog.Logger
	conn     net.PacketConn
	mux      ice.UDPMux
	tcp      net.Listener // with Config.TCP
	tcpMux   ice.TCPMux
	settings webrtc.SettingEngine
	// mtuCache makes each cached packet hold a receive-MTU buffer, as
	// before payloads were copied to size: the memory benchmark's
	// baseline (memory_bench_test.go), set before the first room.
	mtuCache bool

	mu     sync.Mutex
	rooms  map[*Room]struct{}
	closed bool
}

// New listens on cfg.UDPAddr and returns an SFU.
func New(cfg Config) (*SFU, error) {
	if cfg.InitialBitrate <= 0 {
		cfg.InitialBitrate = 1_500_000
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 500 * time.Millisecond
	}
	if cfg.UpgradeHold <= 0 {
		cfg.UpgradeHold = 2 * time.Second
	}
	if cfg.ICEGrace <= 0 {
		cfg.ICEGrace = 5 * time.Second
	}
	if cfg.ICERetry <= 0 {
		cfg.ICERetry = 10 * time.Second
	}
	if cfg.FanOutChunk <= 0 {
		cfg.FanOutChunk = 32
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	conn, ln, err := listen(cfg.UDPAddr, cfg.TCP)
	if err != nil {
		return nil, err
	}
	s := &SFU{cfg: cfg, log: cfg.Logger, conn: conn, rooms: map[*Room]struct{}{}}
	s.mux = webrtc.NewICEUDPMux(nil, conn)
	s.settings.SetICEUDPMux(s.mux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.TCP {
		s.tcp = ln
		s.tcpMux = webrtc.NewICETCPMux(nil, ln, 32)
		s.settings.SetICETCPMux(s.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	s.settings.SetNetworkTypes(networks)
	if host, _, _ := net.SplitHostPort(conn.LocalAddr().String()); net.ParseIP(host).IsLoopback() {
		s.settings.SetIncludeLoopbackCandidate(true)
	}
	if len(cfg.NAT1To1IPs) > 0 {
		// Host candidates carry the external addresses instead of the
		// local one (TestNAT1To1AnnouncesExternalIP).
		if err := s.settings.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External: cfg.NAT1To1IPs, AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			_ = s.closeSockets()
			return nil, fmt.Errorf("sfu: external addresses %v: %w", cfg.NAT1To1IPs, err)
		}
	}
	return s, nil
}

// Addr is the UDP address media arrives on.
func (s *SFU) Addr() net.Addr { return s.conn.LocalAddr() }

// Close closes every room and the UDP port.
func (s *SFU) Close() error {
	s.mu.Lock()
	s.closed = true
	rooms := make([]*Room, 0, len(s.rooms))
	for r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		r.Close()
	}
	return s.closeSockets()
}

// closeSockets closes the UDP port and the ICE-TCP listener.
func (s *SFU) closeSockets() error {
	err := s.mux.Close()
	if cerr := s.conn.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
		err = cerr
	}
	if s.tcpMux != nil {
		if cerr := s.tcpMux.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
			err = cerr
		}
		if cerr := s.tcp.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
			err = cerr
		}
	}
	return err
}

// TCPAddr is the ICE-TCP address, or nil without Config.TCP.
func (s *SFU) TCPAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

// maxNACKs is how many times the SFU asks a publisher for one lost packet.
const maxNACKs = 4

// Payload types the SFU offers and accepts. Fixed, so that every peer
// connection of a room speaks the same numbers.
const (
	ptOpus    = 111
	ptVP8     = 96
	ptVP8RTX  = 97
	ptH264    = 102
	ptH264RTX = 103
)

// newAPI builds the pion API for one peer connection: codecs, header
// extensions and the interceptors (NACK generator towards the publisher,
// RTCP sender/receiver reports, TWCC feedback to publishers, and a GCC
// estimator fed by the subscriber's TWCC feedback). Each peer connection gets
// its own registry because pion hands a congestion controller's estimator
// out per registry, not per connection (pion/webrtc#3053).
//
// pion's NACK responder is not registered: a subscriber's NACKs are answered
// from the publisher's packet cache through the Forwarder's mapping, so no
// per-subscriber copy of every packet is kept.
func (s *SFU) newAPI(pacer *rtxPacer, onEstimator func(cc.BandwidthEstimator)) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	for _, c := range append(mediaVideoCodecs(), rtxCodecs()...) {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("sfu: register %s: %w", c.MimeType, err)
		}
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1", RTCPFeedback: []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}}},
		PayloadType: ptOpus,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("sfu: register opus: %w", err)
	}
	for _, ext := range []struct {
		uri  string
		kind webrtc.RTPCodecType
	}{
		{sdp.SDESMidURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESRTPStreamIDURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESRepairRTPStreamIDURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESMidURI, webrtc.RTPCodecTypeAudio},
		{sdp.AudioLevelURI, webrtc.RTPCodecTypeAudio},
		{sdp.TransportCCURI, webrtc.RTPCodecTypeVideo},
		{sdp.TransportCCURI, webrtc.RTPCodecTypeAudio},
	} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: ext.uri}, ext.kind); err != nil {
			return nil, fmt.Errorf("sfu: register extension %s: %w", ext.uri, err)
		}
	}

	reg := &interceptor.Registry{}
	// A packet repaired over RTX arrives on the repair stream, which pion's
	// NACK generator does not watch: without a bound it would NACK a
	// repaired packet until it leaves its window. Four NACKs (100 ms
	// apart) cover a lost retransmission or two.
	gen, err := nack.NewGeneratorInterceptor(nack.GeneratorMaxNacksPerPacket(maxNACKs))
	if err != nil {
		return nil, fmt.Errorf("sfu: nack generator: %w", err)
	}
	reg.Add(gen)
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		return nil, fmt.Errorf("sfu: rtcp reports: %w", err)
	}
	if err := webrtc.ConfigureTWCCSender(m, reg); err != nil {
		return nil, fmt.Errorf("sfu: twcc feedback: %w", err)
	}
	ccf, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		// No pacer: the SFU keeps under the estimate by choosing layers,
		// rather than queueing every packet behind a leaky bucket.
		return gcc.NewSendSideBWE(gcc.SendSideBWEInitialBitrate(s.cfg.InitialBitrate),
			gcc.SendSideBWEMinBitrate(50_000), gcc.SendSideBWEPacer(pacer))
	})
	if err != nil {
		return nil, fmt.Errorf("sfu: congestion control: %w", err)
	}
	ccf.OnNewPeerConnection(func(_ string, e cc.BandwidthEstimator) { onEstimator(e) })
	reg.Add(ccf)
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(m, reg); err != nil {
		return nil, fmt.Errorf("sfu: twcc header extension: %w", err)
	}
	se := s.settings // a copy: the buffer factory is this peer connection's
	se.BufferFactory = pacer.rtcp.newBuffer
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}

// listen opens the SFU's UDP socket on addr and, with tcp, the ICE-TCP
// listener on the same port number, so that one firewall rule (or port
// forward) names both. With port 0 the UDP port is the system's choice and
// its number may be taken for TCP by another program: then another UDP
// port is tried, a few times.
func listen(addr string, tcp bool) (net.PacketConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	tries := 1
	if tcp && port == "0" {
		tries = 20
	}
	var err error
	for range tries {
		conn, lerr := net.ListenPacket("udp", addr)
		if lerr != nil {
			return nil, nil, fmt.Errorf("sfu: listen on %s: %w", addr, lerr)
		}
		if !tcp {
			return conn, nil, nil
		}
		ln, terr := net.Listen("tcp", conn.LocalAddr().String())
		if terr == nil {
			return conn, ln, nil
		}
		_ = conn.Close()
		err = fmt.Errorf("sfu: listen for ICE-TCP on %s: %w", conn.LocalAddr(), terr)
	}
	return nil, nil, err
}

// mediaVideoCodecs are the video codecs the SFU forwards (not RTX). They are
// also the codec preferences of a transceiver the client created (see
// Peer.declineRTX), with payload type 0 so that pion keeps the numbers the
// client offered.
func mediaVideoCodecs() []webrtc.RTPCodecParameters {
	videoFB := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: webrtc.TypeRTCPFBTransportCC}}
	return []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFB}, PayloadType: ptVP8},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: videoFB}, PayloadType: ptH264},
	}
}

// rtxCodecs are RTX (RFC 4588) for each video codec: retransmissions on
// their own SSRC, so that they do not skew the subscriber's loss and jitter
// statistics of the main stream. They are negotiated only on the m-lines
// the SFU creates to send down tracks (see Peer.declineRTX).
func rtxCodecs() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: fmt.Sprintf("apt=%d", ptVP8)}, PayloadType: ptVP8RTX},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: fmt.Sprintf("apt=%d", ptH264)}, PayloadType: ptH264RTX},
	}
}

// rtxPacer is the pacer of a subscriber's GCC estimator: it sends every
// packet at once (the SFU keeps under the estimate by choosing layers, not
// by queueing), like gcc.NoOpPacer, and also knows the RTX SSRCs. pion binds
// a sender's RTX SSRC to no interceptor stream, so NoOpPacer refuses
// retransmissions written on it ("unknown ssrc"); rtxPacer sends them down
// the main stream's writer, which ends in the same SRTP session.
// It also carries the peer connection's RTCP routes (rtcp.go), which need
// the same RTX SSRCs the other way round.
// It is safe for concurrent use.
type rtxPacer struct {
	rtcp *rtcpRoutes // set at creation

	mu      sync.Mutex
	writers map[uint32]interceptor.RTPWriter
	aliases map[uint32]uint32 // RTX SSRC -> media SSRC
}

func newRTXPacer() *rtxPacer {
	return &rtxPacer{rtcp: newRTCPRoutes(), writers: map[uint32]interceptor.RTPWriter{}, aliases: map[uint32]uint32{}}
}

// alias makes packets on rtx go the way of those on media, and RTCP
// addressed to rtx go to media's reader.
func (p *rtxPacer) alias(rtx, media uint32) {
	p.mu.Lock()
	p.aliases[rtx] = media
	p.mu.Unlock()
	p.rtcp.alias(rtx, media)
}

// forget drops what alias and AddStream kept for a down track whose sender
// stopped (DownTrack.Unbind): pion's estimator has no call for a stream
// that ends, and a subscriber whose m-lines are reused gets new SSRCs for
// every track it is sent, so without this the maps, and the stopped
// streams' writers they hold, would grow for the life of its connection.
// The SFU never gives a sender another track (ReplaceTrack), so an
// unbound SSRC is not written again.
func (p *rtxPacer) forget(media, rtx uint32) {
	p.mu.Lock()
	delete(p.writers, media)
	if rtx != 0 {
		delete(p.aliases, rtx)
	}
	p.mu.Unlock()
	if rtx != 0 {
		p.rtcp.unalias(rtx)
	}
}

// AddStream implements gcc.Pacer.
func (p *rtxPacer) AddStream(ssrc uint32, w interceptor.RTPWriter) {
	p.mu.Lock()
	p.writers[ssrc] = w
	p.mu.Unlock()
}

// SetTargetBitrate implements gcc.Pacer: nothing to pace.
func (p *rtxPacer) SetTargetBitrate(int) {}

// Close implements gcc.Pacer.
func (p *rtxPacer) Close() error { return nil }

// Write implements gcc.Pacer.
//
// The lock is held through the write, as gcc.NoOpPacer does: the writers
// behind stamp transport-wide sequence numbers, and writes serialized here
// leave in the order of those numbers. Without it GCC saw reordering and
// held TestBandwidthCapDropsToLowLayer's estimate near 200 kbit/s with no
// cap at all (4 runs of 4; with the lock it climbs as before).
func (p *rtxPacer) Write(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.writers[h.SSRC]
	if w == nil {
		w = p.writers[p.aliases[h.SSRC]]
	}
	if w == nil {
		return 0, fmt.Errorf("sfu: write to unknown ssrc %d", h.SSRC)
	}
	return w.Write(h, payload, a)
}
