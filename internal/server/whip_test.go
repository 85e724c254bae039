package server_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sori-dev/sori/internal/config"
)

func loopbackPC(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// completeOffer makes an offer with every candidate in it (no trickle).
func completeOffer(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-done
	return pc.LocalDescription().SDP
}

func whipDo(t *testing.T, method, url, token, ctype, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestWHIPToWHEP: a pion WHIP publisher ingests VP8 into a room's stream and
// a pion WHEP viewer plays it; both authorized by the connection token of a
// room member. Also: CORS preflight, 401/403/415, trickle PATCH, DELETE.
func TestWHIPToWHEP(t *testing.T) {
	if testing.Short() {
		t.Skip("WebRTC end-to-end")
	}
	ts := startServer(t, func(c *config.Config) {
		c.SFUListen = "127.0.0.1:0"
		c.TURNEnabled = false
	})
	room, members := chatRoomOf(t, ts, "ann", "bo")
	// Connection tokens, the same as for a real-time connection.
	connectToken := func(u chatUser) chatUser {
		return chatUser{name: u.name, token: u.call(t, ts, "POST", "/api/v1/auth/connect-token", nil, http.StatusOK)["token"].(string)}
	}
	users := []chatUser{connectToken(members[0]), connectToken(members[1])}
	outsider := connectToken(signup(t, ts.URL, "cy"))
	whip, whep := ts.URL+"/rtc/whip/"+room, ts.URL+"/rtc/whep/"+room

	resp, _ := whipDo(t, http.MethodOptions, whip, "", "", "")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "PATCH") ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Location") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}

	// The publisher.
	pub := loopbackPC(t)
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "obs")
	if err != nil {
		t.Fatal(err)
	}
	pubTr, err := pub.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	// RTCP from the SFU (its receiver reports, about once a second) says
	// the publisher's packets are arriving: the viewer's retries wait for it.
	fromSFU := make(chan struct{}, 1)
	go func() {
		for {
			if _, _, err := pubTr.Sender().ReadRTCP(); err != nil {
				return
			}
			select {
			case fromSFU <- struct{}{}:
			default:
			}
		}
	}()
	offer := completeOffer(t, pub)
	for _, c := range []struct {
		token, ctype string
		status       int
	}{
		{"", "application/sdp", http.StatusUnauthorized},
		{outsider.token, "application/sdp", http.StatusForbidden},
		{users[0].token, "text/plain", http.StatusUnsupportedMediaType},
	} {
		if resp, body := whipDo(t, http.MethodPost, whip, c.token, c.ctype, offer); resp.StatusCode != c.status {
			t.Fatalf("POST with token %v, %s: %d %s, want %d", c.token != "", c.ctype, resp.StatusCode, body, c.status)
		}
	}
	resp, answer := whipDo(t, http.MethodPost, whip, users[0].token, "application/sdp", offer)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Content-Type") != "application/sdp" ||
		!strings.HasPrefix(resp.Header.Get("Location"), "/rtc/whip/"+room+"/") {
		t.Fatalf("WHIP POST: %d %v %s", resp.StatusCode, resp.Header, answer)
	}
	if !strings.Contains(answer, "a=candidate:") {
		t.Fatal("the WHIP answer carries no candidates")
	}
	if err := pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		payload := []byte{0x10, 0x00, 0x9d, 0x01, 0x2a, 0x01, 0x02}
		for seq := uint16(0); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: seq, Timestamp: uint32(seq) * 1800}, Payload: payload})
		}
	}()

	// The viewer: it gets the tracks published when it joins; until the
	// publisher's video has reached the SFU it is told so (404) and asks
	// again.
	var viewer *webrtc.PeerConnection
	var received atomic.Int64
	arrived := make(chan struct{}, 1)
	var location string
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		viewer = loopbackPC(t)
		if _, err := viewer.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
		viewer.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				received.Add(1)
				select {
				case arrived <- struct{}{}:
				default:
				}
			}
		})
		resp, answer := whipDo(t, http.MethodPost, whep, users[1].token, "application/sdp", completeOffer(t, viewer))
		if resp.StatusCode == http.StatusCreated {
			if !strings.Contains(answer, "a=msid:") {
				t.Fatalf("WHEP answer without a track: %s", answer)
			}
			location = resp.Header.Get("Location")
			if err := viewer.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
				t.Fatal(err)
			}
			break
		}
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(answer, "nothing is published") {
			t.Fatalf("WHEP POST: %d %s", resp.StatusCode, answer)
		}
		_ = viewer.Close()
		select { // ask again once the SFU reports on the publisher's packets
		case <-fromSFU:
		case <-deadline.C:
			t.Fatal("the publisher's track never reached the SFU")
		}
	}
	for received.Load() < 10 {
		select {
		case <-arrived:
		case <-deadline.C:
			t.Fatalf("the WHEP viewer got %d packets (viewer %s, publisher %s)", received.Load(), viewer.ConnectionState(), pub.ConnectionState())
		}
	}

	// Trickle: a candidate fragment is accepted by the owner only.
	frag := "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
	if resp, body := whipDo(t, http.MethodPatch, ts.URL+location, users[0].token, "application/trickle-ice-sdpfrag", frag); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("PATCH by another user: %d %s, want 404", resp.StatusCode, body)
	}
	if resp, body := whipDo(t, http.MethodPatch, ts.URL+location, users[1].token, "application/trickle-ice-sdpfrag", frag); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH: %d %s", resp.StatusCode, body)
	}
	if resp, body := whipDo(t, http.MethodDelete, ts.URL+location, users[1].token, "", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	if resp, _ := whipDo(t, http.MethodDelete, ts.URL+location, users[1].token, "", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("second DELETE: %d, want 404", resp.StatusCode)
	}
}
