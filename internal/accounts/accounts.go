package accounts

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/ratelimit"
	"github.com/sori-dev/sori/internal/store"
)

// Config configures a Service. Store and Hasher are required.
type Config struct {
	Store  store.Store
	Hasher *Hasher
	// Verifier checks externally minted JWTs presented as bearer tokens and
	// mints connection tokens for logged-in users; nil disables both.
	Verifier     *auth.Verifier
	SessionTTL   time.Duration // browser sessions; 0 = 14 days
	ConnTokenTTL time.Duration // minted connection tokens; 0 = 1 hour
	// Registration is the sign-up mode unless a server admin has stored
	// another (see RegistrationMode); "" = RegistrationOpen.
	Registration Registration
	// LoginRate and LoginBurst limit password attempts (sign-up, login,
	// password change) per client address: LoginRate a minute on average,
	// LoginBurst at once; 0 = 10 a minute, 20 at once. Each username gets
	// half the rate and a quarter of the burst (at least 1) for login and
	// password change, so that guesses spread over many addresses still
	// meet a limit.
	LoginRate  float64
	LoginBurst int
	Now        func() time.Time // nil = time.Now
	Log        *slog.Logger     // nil = discard
	// OnRevoke runs after a user's credentials were revoked through this
	// Service (password change, reset, "log out everywhere"), with the
	// updated user: the server closes the user's open connections there.
	// It must not block. nil = nothing.
	OnRevoke func(store.User)
	// OnProfile runs after a user's display name or avatar changed through
	// this Service, with the updated user: the server tells the user's rooms
	// there. nil = nothing.
	OnProfile func(context.Context, store.User)
}

// Default password attempt limits (see Config.LoginRate).
const (
	DefaultLoginRate  = 10 // a minute
	DefaultLoginBurst = 20
)

// Service signs users up and in and tells who is behind a request. It is
// safe for concurrent use. Its caps on stored rows (MaxAPITokens,
// MaxInvites) need no lock here: the store counts and inserts in one
// transaction, for every node sharing it.
type Service struct {
	cfg Config
	st  store.Store
	h   *Hasher
	log *slog.Logger

	clientAttempts *ratelimit.Limiter // keyed by ratelimit.ClientKey
	userAttempts   *ratelimit.Limiter // keyed by userKey
	profileChanges *ratelimit.Limiter // keyed by user id (see AllowProfileChange)
}

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Hasher == nil {
		return nil, errors.New("accounts: a store and a hasher are required")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 14 * 24 * time.Hour
	}
	if cfg.ConnTokenTTL <= 0 {
		cfg.ConnTokenTTL = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registration == "" {
		cfg.Registration = RegistrationOpen
	}
	if !cfg.Registration.Valid() {
		return nil, fmt.Errorf("accounts: registration mode %q: want open, invite or closed", cfg.Registration)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.LoginRate <= 0 {
		cfg.LoginRate = DefaultLoginRate
	}
	if cfg.LoginBurst <= 0 {
		cfg.LoginBurst = DefaultLoginBurst
	}
	perSecond := cfg.LoginRate / 60
	return &Service{cfg: cfg, st: cfg.Store, h: cfg.Hasher, log: cfg.Log,
		clientAttempts: ratelimit.New(ratelimit.Config{Rate: perSecond, Burst: cfg.LoginBurst, Now: cfg.Now}),
		userAttempts:   ratelimit.New(ratelimit.Config{Rate: perSecond / 2, Burst: max(1, cfg.LoginBurst/4), Now: cfg.Now}),
		profileChanges: ratelimit.New(ratelimit.Config{Rate: ProfileChangeRate / 60.0, Burst: ProfileChangeBurst, Now: cfg.Now}),
	}, nil
}

// Errors of the account operations, as numbered protocol errors.
var (
	// ErrBadCredentials is the one answer for a wrong password and an unknown
	// username alike, so that it does not reveal which names exist.
	ErrBadCredentials = protocol.ErrPermissionDenied.WithMessage("wrong username or password")
	ErrUsernameTaken  = protocol.ErrConflict.WithMessage("username is taken")
	ErrSignupClosed   = protocol.ErrPermissionDenied.WithMessage("sign-up is closed on this server")
	// ErrAccountDisabled answers a correct password of a disabled user.
	ErrAccountDisabled = protocol.ErrPermissionDenied.WithMessage("this account is disabled: ask a server administrator")
	ErrNotLoggedIn     = protocol.ErrPermissionDenied.WithMessage("log in first")
	ErrCSRF            = protocol.ErrPermissionDenied.WithMessage("missing or wrong X-CSRF-Token header")
	ErrTooManyTokens   = protocol.ErrConflict.WithMessage("a user may hold at most " + strconv.Itoa(MaxAPITokens) + " API tokens: revoke one first")
	// ErrNeedsLogin refuses a credential change to a request that proved
	// itself with a connection token: a token that travels in WebSocket
	// frames and lives an hour must not be able to outlive itself.
	ErrNeedsLogin = protocol.ErrPermissionDenied.WithMessage("a connection token cannot mint or change credentials: use a login session or an API token")
)

// CreateUser validates name and password and creates the user; the CLI's
// `sori user add` and open sign-up both end here.
func (s *Service) CreateUser(ctx context.Context, name, password string, admin bool) (store.User, error) {
	hash, err := s.checkNew(ctx, name, password)
	if err != nil {
		return store.User{}, err
	}
	u, err := s.st.CreateUser(ctx, store.User{Username: name, PasswordHash: hash, IsAdmin: admin})
	if errors.Is(err, store.ErrConflict) {
		return store.User{}, ErrUsernameTaken
	}
	if err != nil {
		return store.User{}, fmt.Errorf("accounts: create user %s: %w", name, err)
	}
	return u, nil
}

// checkNew validates a new user's name and password and hashes the
// password.
func (s *Service) checkNew(ctx context.Context, name, password string) (string, error) {
	if perr := ValidateUsername(name); perr != nil {
		return "", perr
	}
	if perr := ValidatePassword(password); perr != nil {
		return "", perr
	}
	return s.h.Hash(ctx, password)
}

// Login checks a username and password. An unknown username costs the same
// argon2id work as a known one (a dummy verification), so response times do
// not tell which usernames exist.
func (s *Service) Login(ctx context.Context, name, password string) (store.User, error) {
	if len(password) > MaxPassword || len(name) > MaxUsername {
		return store.User{}, ErrBadCredentials
	}
	u, err := s.st.GetUserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		if err := s.h.VerifyDummy(ctx, password); err != nil {
			return store.User{}, err
		}
		return store.User{}, ErrBadCredentials
	}
	if err != nil {
		return store.User{}, fmt.Errorf("accounts: look up %s: %w", name, err)
	}
	ok, err := s.h.Verify(ctx, u.PasswordHash, password)
	if err != nil {
		return store.User{}, fmt.Errorf("accounts: verify password of %s: %w", name, err)
	}
	if !ok {
		return store.User{}, ErrBadCredentials
	}
	if u.Disabled {
		// Said only to whoever knows the password: it reveals nothing to
		// a guesser, and tells the user whom to ask.
		return store.User{}, ErrAccountDisabled
	}
	if s.h.NeedsRehash(u.PasswordHash) {
		if hash, err := s.h.Hash(ctx, password); err == nil {
			if err := s.st.SetPasswordHash(ctx, u.ID, hash); err != nil {
				s.log.Warn("password rehash failed", "user", u.Username, "err", err)
			}
		}
	}
	return u, nil
}

// SetPassword replaces a user's password and revokes every credential the
// user holds (a reset must lock out whoever knew the old one): sessions, API
// tokens and, through the credentials generation, connection tokens.
func (s *Service) SetPassword(ctx context.Context, userID int64, password string) error {
	if perr := ValidatePassword(password); perr != nil {
		return perr
	}
	hash, err := s.h.Hash(ctx, password)
	if err != nil {
		return err
	}
	return s.revoke(ctx, userID, hash)
}

// SetDisabled disables or enables a user. Disabling revokes every
// credential the user holds in the same store transaction (sessions, API
// tokens, connection tokens) and closes their connections (OnRevoke);
// while disabled they cannot log in, and no token, even one minted by an
// application with the server's secret, is accepted for them. Enabling
// gives nothing back: the user logs in again.
func (s *Service) SetDisabled(ctx context.Context, userID int64, disabled bool) (store.User, error) {
	u, err := s.st.SetDisabled(ctx, userID, disabled)
	if err != nil {
		return store.User{}, fmt.Errorf("accounts: set disabled: %w", err)
	}
	if disabled && s.cfg.OnRevoke != nil {
		s.cfg.OnRevoke(u)
	}
	s.log.Info("user disabled or enabled", "user", u.Username, "disabled", disabled)
	return u, nil
}

// LogOutEverywhere revokes every credential of the user, as SetPassword
// does, without changing the password.
func (s *Service) LogOutEverywhere(ctx context.Context, userID int64) error {
	return s.revoke(ctx, userID, "")
}

func (s *Service) revoke(ctx context.Context, userID int64, hash string) error {
	u, err := s.st.RevokeCredentials(ctx, userID, hash)
	if err != nil {
		return fmt.Errorf("accounts: revoke credentials: %w", err)
	}
	if s.cfg.OnRevoke != nil {
		s.cfg.OnRevoke(u)
	}
	return nil
}

// CheckToken is the auth.Check the server installs on its Verifier: it
// refuses a connection token issued to a user before their last credential
// revocation. A token the server minted for a logged-in user carries the
// generation it was minted under, which must still be current; any other
// token (minted with `sori token`, POST /api/token or by the application)
// must have been issued ("iat") in a later second than the revocation, and
// one without "iat" is refused once the user has had one. A subject without
// an account has nothing to revoke. It reads the store each time, so a
// revocation made by another process (`sori user reset-password`) counts
// from the next check. A store failure or timeout does not accept the token
// (fail closed) but does not call it bad either: it answers
// auth.ErrCheckUnavailable, which clients see as 122 "try again".
func (s *Service) CheckToken(c *auth.Claims) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u, err := s.st.GetUserByName(ctx, c.User())
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		// Not a refusal: the store could not say (auth.ErrCheckUnavailable
		// makes every caller answer 122 "try again", not 113 "bad token").
		return fmt.Errorf("%w: accounts: check token of %s: %w", auth.ErrCheckUnavailable, c.User(), err)
	}
	return TokenStands(u, c)
}

// TokenStands reports (as nil) whether claims issued to u still stand after
// u's credential revocations; see CheckToken. No token of a disabled user
// stands, whenever and by whomever it was minted.
func TokenStands(u store.User, c *auth.Claims) error {
	if u.Disabled {
		return errors.New("the account is disabled")
	}
	if c.Gen != nil {
		if *c.Gen != u.CredentialsGen {
			return errors.New("credentials changed since the token was minted")
		}
		return nil
	}
	if u.CredentialsChangedAt.IsZero() {
		return nil
	}
	// iat has whole seconds: only a later second proves "after".
	if iat := c.Issued(); iat.IsZero() || iat.Before(u.CredentialsChangedAt.Truncate(time.Second).Add(time.Second)) {
		return errors.New("token issued before the last credentials change")
	}
	return nil
}

// tokenPrefix marks Sori's opaque session and API tokens, so that a leaked
// one is recognizable (secret scanners) and never mistaken for a JWT.
const tokenPrefix = "sori_"

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// MaxWebSessions bounds a user's unexpired browser sessions. Only failed
// logins are rate limited, so without it a script that logs in with the
// right password in a loop would grow the sessions table without end.
const MaxWebSessions = 100

// StartSession creates a browser session for u and returns its cookie token
// and the session (with its CSRF token). At MaxWebSessions it first ends
// u's oldest browser session: a login is never refused for the ones that
// piled up (forgotten browsers, cleared cookies).
func (s *Service) StartSession(ctx context.Context, u store.User) (string, store.Session, error) {
	tok := tokenPrefix + newSecret()
	now := s.cfg.Now()
	want := store.Session{Kind: store.SessionWeb, UserID: u.ID, CSRFToken: newSecret(), CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	for try := 0; ; try++ {
		// The store counts and inserts in one step, for every node sharing it.
		sess, err := s.st.CreateSessionCapped(ctx, tok, want, MaxWebSessions)
		if errors.Is(err, store.ErrLimit) && try < 3 { // more tries only if other logins race this one
			if err := s.endOldestWebSession(ctx, u.ID, now); err != nil {
				return "", store.Session{}, err
			}
			continue
		}
		if err != nil {
			return "", store.Session{}, fmt.Errorf("accounts: create session: %w", err)
		}
		return tok, sess, nil
	}
}

// endOldestWebSession deletes userID's oldest unexpired browser session.
func (s *Service) endOldestWebSession(ctx context.Context, userID int64, now time.Time) error {
	list, err := s.st.ListSessions(ctx, userID)
	if err != nil {
		return fmt.Errorf("accounts: list sessions of user %d: %w", userID, err)
	}
	var oldest *store.Session
	for i, ss := range list {
		if ss.Kind == store.SessionWeb && ss.ExpiresAt.After(now) && (oldest == nil || ss.CreatedAt.Before(oldest.CreatedAt)) {
			oldest = &list[i]
		}
	}
	if oldest == nil {
		return nil
	}
	if err := s.st.DeleteSession(ctx, oldest.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("accounts: end the oldest session of user %d: %w", userID, err)
	}
	return nil
}

// Limits of API tokens.
const (
	MaxTokenLabel = 100 // bytes of a token's label
	MaxAPITokens  = 50  // unexpired API tokens per user; more is ErrTooManyTokens
)

// CreateAPIToken creates a bearer token for u. ttl 0 means it never expires.
// A user who holds MaxAPITokens unexpired tokens gets ErrTooManyTokens.
func (s *Service) CreateAPIToken(ctx context.Context, u store.User, label string, ttl time.Duration) (string, store.Session, error) {
	if perr := validateLabel(label); perr != nil {
		return "", store.Session{}, perr
	}
	if ttl < 0 {
		return "", store.Session{}, protocol.ErrBadRequest.WithMessage("ttl must not be negative")
	}
	now := s.cfg.Now()
	sess := store.Session{Kind: store.SessionAPI, UserID: u.ID, Label: label, CreatedAt: now}
	if ttl > 0 {
		sess.ExpiresAt = now.Add(ttl)
	}
	tok := tokenPrefix + newSecret()
	// The store counts the unexpired ones and inserts in one step, for
	// every node sharing it.
	sess, err := s.st.CreateSessionCapped(ctx, tok, sess, MaxAPITokens)
	if errors.Is(err, store.ErrLimit) {
		return "", store.Session{}, ErrTooManyTokens
	}
	if err != nil {
		return "", store.Session{}, fmt.Errorf("accounts: create API token: %w", err)
	}
	return tok, sess, nil
}

func validateLabel(label string) *protocol.Error {
	if len(label) > MaxTokenLabel {
		return protocol.ErrBadRequest.WithMessage("label must be at most 100 bytes")
	}
	if !validText(label) {
		return protocol.ErrBadRequest.WithMessage("label must be valid UTF-8 without control characters")
	}
	return nil
}

// ListAPITokens returns u's API tokens (never their secrets).
func (s *Service) ListAPITokens(ctx context.Context, userID int64) ([]store.Session, error) {
	all, err := s.st.ListSessions(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("accounts: list tokens: %w", err)
	}
	out := make([]store.Session, 0, len(all))
	for _, ss := range all {
		if ss.Kind == store.SessionAPI {
			out = append(out, ss)
		}
	}
	return out, nil
}

// RevokeAPIToken deletes one of userID's API tokens by id; another user's
// token is reported as not found.
func (s *Service) RevokeAPIToken(ctx context.Context, userID int64, id string) error {
	toks, err := s.ListAPITokens(ctx, userID)
	if err != nil {
		return err
	}
	for _, t := range toks {
		if t.ID == id {
			if err := s.st.DeleteSession(ctx, id); err != nil {
				return fmt.Errorf("accounts: revoke token: %w", err)
			}
			return nil
		}
	}
	return protocol.ErrNotFound.WithMessage("no such token")
}

// EndSession deletes the session or API token with id (logout).
func (s *Service) EndSession(ctx context.Context, id string) error {
	if err := s.st.DeleteSession(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("accounts: end session: %w", err)
	}
	return nil
}

// MintConnectionToken returns a connection token (JWT) for u, for the
// real-time connection: its subject is the username, it grants no channels
// (the chat service authorizes rooms by membership), and it carries u's
// credentials generation, so that it dies with u's next revocation.
func (s *Service) MintConnectionToken(u store.User) (string, time.Duration, error) {
	if s.cfg.Verifier == nil {
		return "", 0, errors.New("accounts: no token verifier configured")
	}
	c := auth.NewClaims(u.Username, s.cfg.ConnTokenTTL, s.cfg.Now())
	gen := u.CredentialsGen
	c.Gen = &gen
	tok, err := s.cfg.Verifier.Mint(c)
	if err != nil {
		return "", 0, fmt.Errorf("accounts: mint connection token: %w", err)
	}
	return tok, s.cfg.ConnTokenTTL, nil
}

// UserForSubject returns the chat user named by a verified token subject
// (a connection token's "sub", or an externally minted JWT's). A subject
// that is a valid username but has no account yet gets one, without a
// password: an application that mints tokens for its users with the
// server's secret or a trusted key vouches for them, which is how Sori is
// used as the chat back end of an existing application.
func (s *Service) UserForSubject(ctx context.Context, subject string) (store.User, error) {
	u, err := s.st.GetUserByName(ctx, subject)
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("accounts: look up %s: %w", subject, err)
	}
	if perr := ValidateUsername(subject); perr != nil {
		return store.User{}, protocol.ErrPermissionDenied.WithMessage("token subject is not a valid chat username")
	}
	u, err = s.st.CreateUser(ctx, store.User{Username: subject})
	if errors.Is(err, store.ErrConflict) { // created concurrently
		u, err = s.st.GetUserByName(ctx, subject)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("accounts: provision %s: %w", subject, err)
	}
	s.log.Info("chat user provisioned from token", "user", u.Username)
	return u, nil
}

// Method is how a request proved who it is.
type Method string

// Authentication methods.
const (
	MethodCookie Method = "cookie" // browser session; unsafe methods need the CSRF header
	MethodToken  Method = "token"  // API bearer token
	MethodJWT    Method = "jwt"    // connection token or externally minted JWT
)

// Identity is the authenticated user of a request.
type Identity struct {
	User      store.User
	Method    Method
	SessionID string // cookie and API token: the store id (TokenID) of the session
	CSRFToken string // cookie only
}
