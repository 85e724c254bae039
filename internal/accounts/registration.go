package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
)

// Registration is who may sign up by themselves.
type Registration string

// Registration modes.
const (
	RegistrationOpen   Registration = "open"   // anyone who reaches the server
	RegistrationInvite Registration = "invite" // only with an invite code from a server admin
	RegistrationClosed Registration = "closed" // nobody: users are made with `sori user add`
)

// Valid reports whether m is a known mode.
func (m Registration) Valid() bool {
	return m == RegistrationOpen || m == RegistrationInvite || m == RegistrationClosed
}

// registrationSetting is the store setting that holds a server admin's
// choice of mode. Kept in the store, it holds for every node of a cluster
// and across restarts, and wins over the configured mode until cleared.
const registrationSetting = "registration"

// Sources of the registration mode.
const (
	SourceConfig = "config" // --registration (or its default)
	SourceAdmin  = "admin"  // PUT /api/v1/admin/registration
)

// Invite limits.
const (
	DefaultInviteTTL = 7 * 24 * time.Hour
	MinInviteTTL     = time.Minute
	MaxInviteTTL     = 90 * 24 * time.Hour
	MaxInviteUses    = 1000
	// MaxInvites bounds the invites that can still be used (unexpired,
	// uses left); spent and expired ones are dropped when one is made.
	MaxInvites = 200
)

// Errors of sign-up and invites.
var (
	ErrInviteNeeded = protocol.ErrPermissionDenied.WithMessage(`sign-up on this server needs an invite: send "invite" with the code a server admin gave you`)
	ErrBadInvite    = protocol.ErrPermissionDenied.WithMessage("the invite is unknown, expired, revoked or used up")
	ErrTooManyInv   = protocol.ErrConflict.WithMessage(fmt.Sprintf("at most %d usable invites at once: revoke some first", MaxInvites))
	errNoInvite     = protocol.ErrNotFound.WithMessage("no such invite")
)

// RegistrationMode returns the mode in force and where it comes from
// (SourceAdmin or SourceConfig). It reads the store each time, so a change
// made on another node holds from the next sign-up.
func (s *Service) RegistrationMode(ctx context.Context) (Registration, string, error) {
	v, err := s.st.GetSetting(ctx, registrationSetting)
	if errors.Is(err, store.ErrNotFound) {
		return s.cfg.Registration, SourceConfig, nil
	}
	if err != nil {
		return "", "", fmt.Errorf("accounts: registration mode: %w", err)
	}
	if m := Registration(v); m.Valid() {
		return m, SourceAdmin, nil
	}
	s.log.Warn("unknown registration mode in the store; using the configured one", "mode", v)
	return s.cfg.Registration, SourceConfig, nil
}

// SetRegistrationMode stores a server admin's choice of mode for every
// node; "" clears it, so the configured mode holds again.
func (s *Service) SetRegistrationMode(ctx context.Context, m Registration) error {
	if m != "" && !m.Valid() {
		return protocol.ErrBadRequest.WithMessage(`mode must be "open", "invite" or "closed" (or "" for the configured one)`)
	}
	if err := s.st.SetSetting(ctx, registrationSetting, string(m)); err != nil {
		return fmt.Errorf("accounts: set registration mode: %w", err)
	}
	return nil
}

// SignUp creates a regular user if the registration mode allows it: always
// when open, never when closed, and with invite mode only by spending one
// use of a valid invite code, in the same transaction that creates the
// user (so the last use goes to exactly one of racing sign-ups, and a
// refused sign-up spends nothing). Open mode ignores an invite.
func (s *Service) SignUp(ctx context.Context, name, password, invite string) (store.User, error) {
	mode, _, err := s.RegistrationMode(ctx)
	if err != nil {
		return store.User{}, err
	}
	switch mode {
	case RegistrationClosed:
		return store.User{}, ErrSignupClosed
	case RegistrationInvite:
		if invite == "" {
			return store.User{}, ErrInviteNeeded
		}
	default:
		return s.CreateUser(ctx, name, password, false)
	}
	hash, err := s.checkNew(ctx, name, password)
	if err != nil {
		return store.User{}, err
	}
	if len(invite) > 256 {
		return store.User{}, ErrBadInvite
	}
	u, err := s.st.CreateUserWithInvite(ctx, store.User{Username: name, PasswordHash: hash}, store.TokenID(invite), s.cfg.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.User{}, ErrBadInvite
	case errors.Is(err, store.ErrConflict):
		return store.User{}, ErrUsernameTaken
	case err != nil:
		return store.User{}, fmt.Errorf("accounts: sign up %s with an invite: %w", name, err)
	}
	s.log.Info("user signed up with an invite", "user", u.Username)
	return u, nil
}

// CreateInvite makes an invite code for uses sign-ups (0 = 1) within ttl
// (0 = DefaultInviteTTL). The code is shown once: the store keeps only its
// digest.
func (s *Service) CreateInvite(ctx context.Context, by store.User, ttl time.Duration, uses int) (string, store.Invite, error) {
	if ttl == 0 {
		ttl = DefaultInviteTTL
	}
	if uses == 0 {
		uses = 1
	}
	if ttl < MinInviteTTL || ttl > MaxInviteTTL {
		return "", store.Invite{}, protocol.ErrBadRequest.WithMessage("ttl_seconds must be between 60 and 7776000 (90 days); 0 = 7 days")
	}
	if uses < 1 || uses > MaxInviteUses {
		return "", store.Invite{}, protocol.ErrBadRequest.WithMessage("uses must be between 1 and 1000; 0 = 1")
	}
	now := s.cfg.Now()
	code := newSecret()
	// The store counts and inserts in one step, for every node sharing it.
	inv, err := s.st.CreateInvite(ctx, store.Invite{ID: store.TokenID(code), CreatedBy: by.ID, CreatedAt: now, ExpiresAt: now.Add(ttl), Uses: uses}, MaxInvites)
	if errors.Is(err, store.ErrLimit) {
		return "", store.Invite{}, ErrTooManyInv
	}
	if err != nil {
		return "", store.Invite{}, fmt.Errorf("accounts: create invite: %w", err)
	}
	return code, inv, nil
}

// ListInvites returns the stored invites, newest first (spent and expired
// ones too, until the next CreateInvite drops them).
func (s *Service) ListInvites(ctx context.Context) ([]store.Invite, error) {
	out, err := s.st.ListInvites(ctx)
	if err != nil {
		return nil, fmt.Errorf("accounts: list invites: %w", err)
	}
	return out, nil
}

// RevokeInvite deletes an invite by id (404 if there is none).
func (s *Service) RevokeInvite(ctx context.Context, id string) error {
	err := s.st.DeleteInvite(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return errNoInvite
	}
	if err != nil {
		return fmt.Errorf("accounts: revoke invite: %w", err)
	}
	return nil
}
