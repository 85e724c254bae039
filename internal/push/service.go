package push

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sori-dev/sori/internal/chat"
	"github.com/sori-dev/sori/internal/clock"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
)

// Bounds.
const (
	// MaxSubscriptions is how many subscriptions (browsers, devices) one
	// user keeps; subscribing more drops the oldest.
	MaxSubscriptions = 10
	// maxPendingPerUser bounds the notices waiting out the grace period
	// for one user; more are dropped (the user has plenty to look at).
	maxPendingPerUser = 20
	// maxPending bounds them for the whole server.
	maxPending = 10000
	// maxEndpoint bounds a subscription's endpoint URL, in bytes.
	maxEndpoint = 2048
	// sendTimeout bounds one request to a push service.
	sendTimeout = 15 * time.Second
	// ttl is how long a push service keeps a message for a device that is
	// offline (the TTL header, RFC 8030 section 5.2).
	ttl = 24 * time.Hour
	// DefaultGrace is the default of Config.Grace.
	DefaultGrace = 10 * time.Second
)

// Config configures a Service. Store, Key and Online are required.
type Config struct {
	Store store.Store
	Key   *Key
	// Subject is the VAPID contact (RFC 8292 "sub"): a mailto: or https:
	// URL a push service may use to reach the operator.
	Subject string
	// Online reports whether the user (by username) has a connection open
	// now, on any device.
	Online func(user string) bool
	// Grace is how long a notice waits before it is pushed: it is sent
	// only if the user had no connection when it came and still has none
	// then, so a page that is reconnecting, or a second device, gets it
	// live instead. 0 = DefaultGrace.
	Grace time.Duration
	Clock clock.Clock // nil = the real clock
	// HTTP sends the pushes; nil = a client that connects only to public
	// addresses and follows no redirect (see hosts.go). Whatever client is
	// given, redirects are not followed.
	HTTP *http.Client
	// Hosts are the push services subscriptions may name ("*.example.com"
	// matches subdomains); nil = DefaultHosts.
	Hosts []string
	// AllowHTTP lets endpoints be plain http:// URLs, and AllowPrivate lets
	// them be IP literals on any port (tests run a local push service).
	// Browsers' push services are always https on public addresses.
	AllowHTTP    bool
	AllowPrivate bool
	Log          *slog.Logger // nil = discard
}

// Service keeps subscriptions and sends notices to them. It is safe for
// concurrent use; its mutex guards only the pending counts and is never
// held while calling out.
type Service struct {
	cfg  Config
	log  *slog.Logger
	wg   sync.WaitGroup
	mu   sync.Mutex
	busy map[int64]int // user id -> notices pending
	all  int
	// sent counts pushes a push service accepted (tests, stats).
	sent, dropped int64
}

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Key == nil || cfg.Online == nil {
		return nil, errors.New("push: a store, a key and an online check are required")
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.HTTP == nil {
		cfg.HTTP = guardedClient(!cfg.AllowPrivate)
	} else {
		c := *cfg.HTTP
		c.CheckRedirect = noRedirect
		cfg.HTTP = &c
	}
	if cfg.Hosts == nil {
		cfg.Hosts = DefaultHosts
	}
	for _, h := range cfg.Hosts {
		if err := ValidHostPattern(h); err != nil && !(cfg.AllowPrivate && net.ParseIP(h) != nil) {
			return nil, err
		}
	}
	if cfg.Subject == "" {
		cfg.Subject = "mailto:admin@localhost"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: cfg.Log, busy: map[int64]int{}}, nil
}

// PublicKey returns the VAPID public key, base64url without padding: the
// browser's applicationServerKey.
func (s *Service) PublicKey() string {
	return base64.RawURLEncoding.EncodeToString(s.cfg.Key.PublicKey())
}

// Subscription is a browser's PushSubscription.toJSON().
type Subscription struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256DH string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

func badRequest(msg string) *protocol.Error { return protocol.ErrBadRequest.WithMessage(msg) }

// Subscribe validates and stores sub for user, returning its id.
func (s *Service) Subscribe(ctx context.Context, user store.User, sub Subscription) (string, error) {
	if err := s.checkEndpoint(sub.Endpoint); err != nil {
		return "", err
	}
	p, err := base64.RawURLEncoding.DecodeString(trimPad(sub.Keys.P256DH))
	if err != nil || len(p) != 65 || p[0] != 4 {
		return "", badRequest("keys.p256dh must be an uncompressed P-256 point, base64url")
	}
	a, err := base64.RawURLEncoding.DecodeString(trimPad(sub.Keys.Auth))
	if err != nil || len(a) != 16 {
		return "", badRequest("keys.auth must be 16 bytes, base64url")
	}
	// Reject keys that are not on the curve now, not at the first push.
	if _, err := Encrypt([]byte("x"), p, a); err != nil {
		return "", badRequest("keys.p256dh is not a P-256 public key")
	}
	got, err := s.cfg.Store.AddPushSubscription(ctx, store.PushSubscription{UserID: user.ID, Endpoint: sub.Endpoint,
		P256DH: base64.RawURLEncoding.EncodeToString(p), Auth: base64.RawURLEncoding.EncodeToString(a)}, MaxSubscriptions)
	if err != nil {
		return "", fmt.Errorf("push: subscribe: %w", err)
	}
	return got.ID, nil
}

func trimPad(s string) string {
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	return s
}

// Unsubscribe deletes user's subscription id (404 if it is not theirs).
func (s *Service) Unsubscribe(ctx context.Context, user store.User, id string) error {
	err := s.cfg.Store.DeletePushSubscription(ctx, user.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return protocol.ErrNotFound.WithMessage("no such push subscription of yours")
	}
	return err
}

// Payload is what a notification carries, encrypted, to the service
// worker.
type Payload struct {
	Type  string `json:"type"` // mention, dm, invited
	Room  int64  `json:"room"`
	Seq   uint64 `json:"seq,omitempty"`
	By    string `json:"by"`
	Title string `json:"title"`
	Body  string `json:"body"`
}

// maxBody bounds the text shown, in characters.
const maxBody = 200

// Notify implements chat.Notifier: unless the user is connected, the
// notice waits out the grace period and is pushed to each of the user's
// subscriptions if the user is still not connected then.
func (s *Service) Notify(_ context.Context, n chat.Notice) {
	if s.cfg.Online(n.User) {
		return
	}
	s.mu.Lock()
	if s.busy[n.UserID] >= maxPendingPerUser || s.all >= maxPending {
		s.dropped++
		s.mu.Unlock()
		return
	}
	s.busy[n.UserID]++
	s.all++
	s.wg.Add(1)
	s.mu.Unlock()
	s.cfg.Clock.AfterFunc(s.cfg.Grace, func() {
		defer s.wg.Done()
		defer s.release(n.UserID)
		if s.cfg.Online(n.User) {
			return
		}
		s.send(n)
	})
}

func (s *Service) release(user int64) {
	s.mu.Lock()
	if s.busy[user]--; s.busy[user] <= 0 {
		delete(s.busy, user)
	}
	s.all--
	s.mu.Unlock()
}

// Wait waits until no notice is pending: every one has been sent or
// skipped (with a fake clock, advance it past the grace period first).
func (s *Service) Wait() { s.wg.Wait() }

// Stats returns how many pushes were accepted by push services and how
// many notices were dropped by the pending bounds.
func (s *Service) Stats() (sent, dropped int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent, s.dropped
}

// send pushes n to every subscription of the user.
func (s *Service) send(n chat.Notice) {
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	defer cancel()
	subs, err := s.cfg.Store.ListPushSubscriptions(ctx, n.UserID)
	if err != nil {
		s.log.Warn("push: list subscriptions", "user", n.User, "err", err)
		return
	}
	if len(subs) == 0 {
		return
	}
	payload, _ := json.Marshal(payloadOf(n))
	for _, sub := range subs {
		if err := s.sendOne(ctx, sub, payload); err != nil {
			s.log.Info("push: not delivered", "user", n.User, "endpoint_host", hostOf(sub.Endpoint), "err", err)
		}
	}
}

func payloadOf(n chat.Notice) Payload {
	p := Payload{Type: n.Type, Room: n.RoomID, Seq: n.Seq, By: n.By}
	switch n.Type {
	case "dm":
		p.Title = n.By
	case "invited":
		p.Title = n.By + " invited you to a room"
	default:
		p.Title = n.By + " mentioned you"
	}
	p.Body = n.Text
	if utf8.RuneCountInString(p.Body) > maxBody {
		r := []rune(p.Body)
		p.Body = string(r[:maxBody-1]) + "…"
	}
	return p
}

func hostOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	return u.Host
}

// errGone marks a subscription its push service no longer knows.
var errGone = errors.New("push: subscription gone")

// sendOne encrypts payload to sub and POSTs it (RFC 8030 section 5). A 404
// or 410 answer means the subscription ended (the user unsubscribed, or
// the browser dropped it): it is deleted.
func (s *Service) sendOne(ctx context.Context, sub store.PushSubscription, payload []byte) error {
	// A subscription stored before the allow-list (or a narrower one)
	// is not sent to; the user's browser subscribes again on its next
	// visit if its push service is allowed.
	if err := s.checkEndpoint(sub.Endpoint); err != nil {
		return fmt.Errorf("push: endpoint no longer allowed: %w", err)
	}
	p256dh, err1 := base64.RawURLEncoding.DecodeString(sub.P256DH)
	auth, err2 := base64.RawURLEncoding.DecodeString(sub.Auth)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	body, err := Encrypt(payload, p256dh, auth)
	if err != nil {
		return err
	}
	authz, err := s.cfg.Key.authorization(sub.Endpoint, s.cfg.Subject, s.cfg.Clock.Now())
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", authz)
	req.Header.Set("Content-Encoding", "aes128gcm")
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("TTL", strconv.Itoa(int(ttl/time.Second)))
	req.Header.Set("Urgency", "high")
	resp, err := s.cfg.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		if err := s.cfg.Store.DeletePushSubscription(ctx, sub.UserID, sub.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return fmt.Errorf("%w (%d): deleted", errGone, resp.StatusCode)
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("push service answered %s", resp.Status)
	}
	s.mu.Lock()
	s.sent++
	s.mu.Unlock()
	return nil
}
