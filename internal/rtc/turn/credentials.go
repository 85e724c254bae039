package turn

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST credential scheme is defined with HMAC-SHA1.
	"encoding/base64"
	"net"
	"strconv"
	"strings"
	"time"
)

// Credentials are a time-limited TURN username and password in the "TURN REST API" scheme
// (draft-uberti-behave-turn-rest-00): Username is "<unix expiry>:<user>" and Password is
// base64(HMAC-SHA1(secret, Username)). The server needs no per-user state to check them.
type Credentials struct {
	Username string    `json:"username"`
	Password string    `json:"credential"`
	Expires  time.Time `json:"expires"`
}

// ICEServer is one entry of an RTCConfiguration.iceServers list; it marshals to the JSON a
// browser's RTCPeerConnection accepts and has the shape of pion's webrtc.ICEServer.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// MintCredentials signs credentials for user that may create allocations until expires.
// user may contain any character, including ':'; it should stay short (a STUN USERNAME is at
// most 513 bytes including the timestamp).
func MintCredentials(secret, user string, expires time.Time) Credentials {
	username := strconv.FormatInt(expires.Unix(), 10) + ":" + user
	return Credentials{
		Username: username,
		Password: sign(secret, username),
		Expires:  time.Unix(expires.Unix(), 0),
	}
}

func sign(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// parseUsername splits "<unix expiry>:<user>". The expiry is everything before the first
// colon, so user may contain colons.
func parseUsername(username string) (expires time.Time, user string, ok bool) {
	ts, user, found := strings.Cut(username, ":")
	if !found || user == "" || ts == "" || ts[0] == '+' || ts[0] == '-' {
		return time.Time{}, "", false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, "", false
	}
	return time.Unix(sec, 0), user, true
}

// userOf returns the user part of a credential username (the pion "user ID" of an
// allocation is the whole username, see Server.authenticate).
func userOf(username string) string {
	if _, user, ok := parseUsername(username); ok {
		return user
	}
	return username
}

// Mint returns credentials for user valid for Config.CredentialTTL from now.
func (s *Server) Mint(user string, now time.Time) Credentials {
	return MintCredentials(s.cfg.Secret, user, now.Add(s.cfg.CredentialTTL))
}

// ICEServers returns the RTCIceServer list for user: a STUN URL, and TURN URLs over UDP, TCP
// and (when TLS is on) TLS, all sharing freshly minted credentials. Ports are the ones the
// server is listening on, so it is meant to be called after Start.
func (s *Server) ICEServers(user string, now time.Time) []ICEServer {
	creds := s.Mint(user, now)
	host := s.publicHost
	s.mu.Lock()
	udp, tcp, tls := s.udpPort, s.tcpPort, s.tlsPort
	s.mu.Unlock()

	hp := func(port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
	var turnURLs []string
	var stunURLs []string
	if udp != 0 {
		stunURLs = append(stunURLs, "stun:"+hp(udp))
		turnURLs = append(turnURLs, "turn:"+hp(udp)+"?transport=udp")
	}
	if tcp != 0 {
		turnURLs = append(turnURLs, "turn:"+hp(tcp)+"?transport=tcp")
	}
	if tls != 0 {
		turnURLs = append(turnURLs, "turns:"+hp(tls)+"?transport=tcp")
	}
	var out []ICEServer
	if len(stunURLs) > 0 {
		out = append(out, ICEServer{URLs: stunURLs})
	}
	if len(turnURLs) > 0 {
		out = append(out, ICEServer{URLs: turnURLs, Username: creds.Username, Credential: creds.Password})
	}
	return out
}
