package accounts

import (
	"strings"
	"time"
)

// Password attempts are rate limited before any argon2 work: per client
// address for sign-up, login and password change, and per username for
// login and password change. A successful login or change gives the
// username's token back, so that only failures use it up; the address's
// token is spent either way. Limiting by username lets anyone slow down
// logins to a name they know; that is the price of stopping guesses spread
// over many addresses, and the owner's existing sessions keep working.
// The limits are the domain's (Config.LoginRate); the REST layer charges
// them, since only it knows the client's address and when the body is read.

// AllowClientAttempt charges one password attempt to the client key (see
// ratelimit.ClientKey). When its bucket is empty it returns false and how
// long to wait.
func (s *Service) AllowClientAttempt(client string) (time.Duration, bool) {
	return s.clientAttempts.Allow(client)
}

// AllowUserAttempt charges one password attempt to the username (folded,
// see userKey). When its bucket is empty it returns false and how long to
// wait. A name longer than any username is not charged: Login refuses it
// without hashing.
func (s *Service) AllowUserAttempt(name string) (time.Duration, bool) {
	key := userKey(name)
	if key == "" {
		return 0, true
	}
	return s.userAttempts.Allow(key)
}

// RefundUserAttempt gives back the attempt AllowUserAttempt charged to
// name, after the password proved right.
func (s *Service) RefundUserAttempt(name string) {
	if key := userKey(name); key != "" {
		s.userAttempts.Refund(key)
	}
}

// SessionTTL is how long a browser session lives (Config.SessionTTL): the
// REST layer's cookie max-age.
func (s *Service) SessionTTL() time.Duration { return s.cfg.SessionTTL }

// userKey is the rate limit key of a username: folded, since usernames are
// unique ignoring case. A name longer than any username is refused by
// Login without hashing, so it is not keyed (and cannot make a long key).
func userKey(name string) string {
	if len(name) > MaxUsername {
		return ""
	}
	return strings.ToLower(name)
}
