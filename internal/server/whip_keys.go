package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sori-dev/sori/internal/accounts"
	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
)

// Stream keys (docs/calls.md, "Stream keys"): a room's owners and admins
// mint keys that let an encoder (OBS) ingest over WHIP into that room
// without a user's connection token. A key is "sk." + id + "." + secret;
// the store keeps the SHA-256 of the secret only, in the server setting
// "stream_keys:<room>" (a JSON list), so it is shared by a cluster's nodes
// and survives restarts. Every key has an expiry and can be revoked, which
// also ends the WHIP sessions ingesting with it.

const (
	streamKeyPrefix = "sk."
	// streamKeysPerRoom bounds the live keys of one room.
	streamKeysPerRoom = 10
	// Key lifetimes: the default, and the bounds of ttl_seconds.
	streamKeyTTL    = 30 * 24 * time.Hour
	streamKeyMinTTL = time.Minute
	streamKeyMaxTTL = 365 * 24 * time.Hour
	streamKeyMaxLen = 64 // of a key's name
)

// streamKey is one stored key (without its secret).
type streamKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	Hash      string    `json:"hash,omitempty"` // hex SHA-256 of the secret; never sent to clients
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

var (
	errNotRoomAdmin   = protocol.ErrPermissionDenied.WithMessage("only the room's owners and admins manage its stream keys")
	errNoStreamKey    = protocol.ErrNotFound.WithMessage("no such stream key in this room")
	errTooManyKeys    = protocol.ErrConflict.WithMessage(fmt.Sprintf("a room has at most %d stream keys: revoke one first", streamKeysPerRoom))
	errBadStreamKey   = protocol.ErrBadToken.WithMessage("unknown, revoked or expired stream key for this room")
	errBadKeyTTL      = protocol.ErrBadRequest.WithMessage("ttl_seconds must be between 60 and 31536000")
	errBadKeyName     = protocol.ErrBadRequest.WithMessage(fmt.Sprintf("name must be at most %d characters", streamKeyMaxLen))
	errKeyBadRoom     = protocol.ErrBadRequest.WithMessage("room must be a chat room id")
	errStreamKeyWHEP  = protocol.ErrBadToken.WithMessage("a stream key ingests (WHIP) only; watch with a connection token")
	errStreamKeyStore = errors.New("stream keys: the stored list is not JSON")
)

func streamKeySetting(room string) string { return "stream_keys:" + room }

// loadKeys reads a room's keys, expired ones dropped.
func (w *whipService) loadKeys(ctx context.Context, room string, now time.Time) ([]streamKey, error) {
	v, err := w.store.GetSetting(ctx, streamKeySetting(room))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream keys of room %s: %w", room, err)
	}
	var all []streamKey
	if err := json.Unmarshal([]byte(v), &all); err != nil {
		return nil, fmt.Errorf("room %s: %w", room, errStreamKeyStore)
	}
	live := all[:0]
	for _, k := range all {
		if now.Before(k.ExpiresAt) {
			live = append(live, k)
		}
	}
	return live, nil
}

func (w *whipService) saveKeys(ctx context.Context, room string, keys []streamKey) error {
	v := ""
	if len(keys) > 0 {
		b, err := json.Marshal(keys)
		if err != nil {
			return fmt.Errorf("stream keys of room %s: %w", room, err)
		}
		v = string(b)
	}
	if err := w.store.SetSetting(ctx, streamKeySetting(room), v); err != nil {
		return fmt.Errorf("stream keys of room %s: %w", room, err)
	}
	return nil
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// checkStreamKey tells whether key is a live key of room, and its id.
func (w *whipService) checkStreamKey(ctx context.Context, room, key string) (string, error) {
	id, secret, ok := strings.Cut(strings.TrimPrefix(key, streamKeyPrefix), ".")
	if !ok || id == "" || secret == "" {
		return "", errBadStreamKey
	}
	keys, err := w.loadKeys(ctx, room, time.Now())
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if k.ID == id && subtle.ConstantTimeCompare([]byte(k.Hash), []byte(hashSecret(secret))) == 1 {
			return id, nil
		}
	}
	return "", errBadStreamKey
}

// keyRoutes mounts the stream-key management of room admins under
// /api/v1/rooms/{id}/stream-keys.
func (w *whipService) keyRoutes(acc *accounts.Service) {
	serve := func(h func(r *http.Request, room, user string) (any, int, error)) http.Handler {
		return acc.Require(func(rw http.ResponseWriter, r *http.Request, id accounts.Identity) {
			room := r.PathValue("id")
			if n, err := strconv.ParseInt(room, 10, 64); err != nil || n <= 0 || strconv.FormatInt(n, 10) != room {
				httpx.WriteError(rw, errKeyBadRoom)
				return
			}
			admin, err := w.srv.chat.IsRoomAdmin(r.Context(), id.User.Username, room)
			if err == nil && !admin {
				err = errNotRoomAdmin
			}
			var res any
			status := 0
			if err == nil {
				r.Body = http.MaxBytesReader(rw, r.Body, httpx.MaxJSONBody)
				res, status, err = h(r, room, id.User.Username)
			}
			if err != nil {
				perr := httpx.ProtocolError(err)
				if perr == nil {
					w.srv.log.Error("stream keys request failed", "path", r.URL.Path, "err", err)
					perr = protocol.ErrInternal
				}
				httpx.WriteError(rw, perr)
				return
			}
			if res == nil {
				rw.WriteHeader(status)
				return
			}
			httpx.WriteJSON(rw, status, res)
		})
	}
	w.srv.Handle("POST /api/v1/rooms/{id}/stream-keys", serve(w.createKey))
	w.srv.Handle("GET /api/v1/rooms/{id}/stream-keys", serve(func(r *http.Request, room, _ string) (any, int, error) {
		keys, err := w.loadKeys(r.Context(), room, time.Now())
		if err != nil {
			return nil, 0, err
		}
		for i := range keys {
			keys[i].Hash = ""
		}
		if keys == nil {
			keys = []streamKey{}
		}
		return map[string]any{"stream_keys": keys}, http.StatusOK, nil
	}))
	w.srv.Handle("DELETE /api/v1/rooms/{id}/stream-keys/{key}", serve(w.revokeKey))
}

func (w *whipService) createKey(r *http.Request, room, user string) (any, int, error) {
	var req struct {
		Name       string `json:"name"`
		TTLSeconds int64  `json:"ttl_seconds"`
	}
	if r.ContentLength != 0 {
		if perr := httpx.DecodeJSON(nil, r, &req); perr != nil {
			return nil, 0, perr
		}
	}
	ttl := streamKeyTTL
	if req.TTLSeconds != 0 {
		ttl = time.Duration(req.TTLSeconds) * time.Second
		if ttl < streamKeyMinTTL || ttl > streamKeyMaxTTL {
			return nil, 0, errBadKeyTTL
		}
	}
	if len([]rune(req.Name)) > streamKeyMaxLen {
		return nil, 0, errBadKeyName
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, 0, fmt.Errorf("stream key: %w", err)
	}
	var idb [6]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, 0, fmt.Errorf("stream key: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(b[:])
	now := time.Now().UTC().Truncate(time.Second)
	k := streamKey{ID: base64.RawURLEncoding.EncodeToString(idb[:]), Name: req.Name, Hash: hashSecret(secret),
		CreatedBy: user, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	w.keysMu.Lock()
	defer w.keysMu.Unlock()
	keys, err := w.loadKeys(r.Context(), room, now)
	if err != nil {
		return nil, 0, err
	}
	if len(keys) >= streamKeysPerRoom {
		return nil, 0, errTooManyKeys
	}
	if err := w.saveKeys(r.Context(), room, append(keys, k)); err != nil {
		return nil, 0, err
	}
	k.Hash = ""
	return struct {
		streamKey
		Key  string `json:"key"`
		Room string `json:"room"`
	}{k, streamKeyPrefix + k.ID + "." + secret, room}, http.StatusCreated, nil
}

// revokeKey deletes a key and ends the WHIP sessions ingesting with it.
func (w *whipService) revokeKey(r *http.Request, room, _ string) (any, int, error) {
	id := r.PathValue("key")
	w.keysMu.Lock()
	keys, err := w.loadKeys(r.Context(), room, time.Now())
	if err != nil {
		w.keysMu.Unlock()
		return nil, 0, err
	}
	kept := keys[:0]
	for _, k := range keys {
		if k.ID != id {
			kept = append(kept, k)
		}
	}
	if len(kept) == len(keys) {
		w.keysMu.Unlock()
		return nil, 0, errNoStreamKey
	}
	err = w.saveKeys(r.Context(), room, kept)
	w.keysMu.Unlock()
	if err != nil {
		return nil, 0, err
	}
	w.mu.Lock()
	var live []*whipResource
	for _, res := range w.resources {
		if res.room == room && res.user == streamKeyUser(id) {
			live = append(live, res)
		}
	}
	w.mu.Unlock()
	for _, res := range live {
		w.release(res)
	}
	return nil, http.StatusNoContent, nil
}

// streamKeyUser is the owner name of WHIP resources made with key id: the
// per-user bound then bounds each key's sessions.
func streamKeyUser(id string) string { return "stream key " + id }
