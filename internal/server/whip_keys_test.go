package server_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sori-dev/sori/internal/config"
)

// TestWHIPStreamKeys: a room owner mints a stream key; a pion WHIP
// publisher ingests with it (no user token) and a WHEP viewer sees the
// track; the key works for its own room only and never for WHEP; a member
// who is not an admin cannot list, mint or revoke keys; revoking the key
// ends the session it opened (the stream room is empty again) and refuses
// the key from then on.
func TestWHIPStreamKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("WebRTC end-to-end")
	}
	ts := startServer(t, func(c *config.Config) {
		c.SFUListen = "127.0.0.1:0"
		c.TURNEnabled = false
	})
	room, members := chatRoomOf(t, ts, "ann", "bo")
	ann, bo := members[0], members[1]
	keys := "/api/v1/rooms/" + room + "/stream-keys"

	// Authorization of the management endpoints.
	restCall(t, ts.URL, "", "GET", keys, nil, http.StatusUnauthorized)
	bo.call(t, ts, "GET", keys, nil, http.StatusForbidden)
	bo.call(t, ts, "POST", keys, map[string]any{}, http.StatusForbidden)
	outsider := signup(t, ts.URL, "cy")
	outsider.call(t, ts, "POST", keys, map[string]any{}, http.StatusForbidden)
	ann.call(t, ts, "POST", keys, map[string]any{"ttl_seconds": 5}, http.StatusBadRequest)
	ann.call(t, ts, "POST", "/api/v1/rooms/x1/stream-keys", map[string]any{}, http.StatusBadRequest)

	created := ann.call(t, ts, "POST", keys, map[string]any{"name": "OBS", "ttl_seconds": 3600}, http.StatusCreated)
	key, id := created["key"].(string), created["id"].(string)
	if !strings.HasPrefix(key, "sk."+id+".") || created["created_by"] != "ann" || created["name"] != "OBS" {
		t.Fatalf("created %v", created)
	}
	exp, err := time.Parse(time.RFC3339, created["expires_at"].(string))
	if err != nil || time.Until(exp) > time.Hour || time.Until(exp) < 50*time.Minute {
		t.Fatalf("expires_at %v (%v), want in an hour", created["expires_at"], err)
	}
	list := ann.call(t, ts, "GET", keys, nil, http.StatusOK)["stream_keys"].([]any)
	if len(list) != 1 {
		t.Fatalf("keys %v", list)
	}
	if k := list[0].(map[string]any); k["id"] != id || k["key"] != nil || k["hash"] != nil {
		t.Fatalf("listed key %v: want its id and no secret", k)
	}

	// Ingest with the key.
	pub := loopbackPC(t)
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "obs")
	if err != nil {
		t.Fatal(err)
	}
	pubTr, err := pub.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
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
	whip, whep := ts.URL+"/rtc/whip/"+room, ts.URL+"/rtc/whep/"+room
	o := ann.call(t, ts, "POST", "/api/v1/rooms", map[string]any{"name": "other", "kind": "private"}, http.StatusCreated)
	other := strconv.Itoa(int(o["id"].(float64)))
	if resp, body := whipDo(t, http.MethodPost, ts.URL+"/rtc/whip/"+other, key, "application/sdp", offer); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the key in another room: %d %s, want 401", resp.StatusCode, body)
	}
	if resp, body := whipDo(t, http.MethodPost, whip, key+"x", "application/sdp", offer); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong secret: %d %s, want 401", resp.StatusCode, body)
	}
	resp, answer := whipDo(t, http.MethodPost, whip, key, "application/sdp", offer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP POST with the stream key: %d %s", resp.StatusCode, answer)
	}
	if err := pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(0); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: seq, Timestamp: uint32(seq) * 1800},
				Payload: []byte{0x10, 0x00, 0x9d, 0x01, 0x2a}})
		}
	}()
	viewerToken := bo.call(t, ts, "POST", "/api/v1/auth/connect-token", nil, http.StatusOK)["token"].(string)
	viewer := loopbackPC(t)
	if _, err := viewer.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	viewOffer := completeOffer(t, viewer)
	if resp, body := whipDo(t, http.MethodPost, whep, key, "application/sdp", viewOffer); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("WHEP with a stream key: %d %s, want 401", resp.StatusCode, body)
	}
	// The viewer sees the keyed stream once its packets reach the SFU.
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		resp, body := whipDo(t, http.MethodPost, whep, viewerToken, "application/sdp", viewOffer)
		if resp.StatusCode == http.StatusCreated {
			whipDo(t, http.MethodDelete, ts.URL+resp.Header.Get("Location"), viewerToken, "", "")
			break
		}
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("WHEP POST: %d %s", resp.StatusCode, body)
		}
		select {
		case <-fromSFU:
		case <-deadline.C:
			t.Fatal("the keyed publisher's track never reached the SFU")
		}
	}

	// Revocation: members cannot, admins can; the session ends with it.
	bo.call(t, ts, "DELETE", keys+"/"+id, nil, http.StatusForbidden)
	ann.call(t, ts, "DELETE", keys+"/"+id, nil, http.StatusNoContent)
	ann.call(t, ts, "DELETE", keys+"/"+id, nil, http.StatusNotFound)
	if resp, body := whipDo(t, http.MethodPost, whep, viewerToken, "application/sdp", completeOffer(t, loopbackPC(t))); resp.StatusCode != http.StatusNotFound ||
		!strings.Contains(body, "nothing is published") {
		t.Fatalf("WHEP after the key was revoked: %d %s, want 404: its session ended", resp.StatusCode, body)
	}
	if resp, body := whipDo(t, http.MethodPost, whip, key, "application/sdp", completeOffer(t, loopbackPC(t))); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("WHIP with a revoked key: %d %s, want 401", resp.StatusCode, body)
	}
	if l := ann.call(t, ts, "GET", keys, nil, http.StatusOK)["stream_keys"].([]any); len(l) != 0 {
		t.Fatalf("keys after revocation: %v", l)
	}
}
