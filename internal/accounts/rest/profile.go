package rest

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/sori-dev/sori/internal/accounts"
	"github.com/sori-dev/sori/internal/httpx"
)

// Profiles: display name and avatar (docs/api.md, "Profile").

// ProfileJSON is another user's public profile.
type ProfileJSON struct {
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	AvatarURL   string `json:"avatar_url"`
}

type profileChange struct {
	DisplayName *string `json:"display_name"`
}

// allowProfileChange charges one profile change to the caller, answering
// 429 (error 109, Retry-After) and returning false when its bucket is empty.
func (a *API) allowProfileChange(w http.ResponseWriter, id accounts.Identity) bool {
	wait, ok := a.acc.AllowProfileChange(id.User.ID)
	if !ok {
		httpx.WriteRateLimited(w, wait, "too many profile changes; try again later")
	}
	return ok
}

// handlePatchMe changes the caller's profile; fields left out stay.
func (a *API) handlePatchMe(w http.ResponseWriter, r *http.Request, id accounts.Identity) {
	if !a.allowProfileChange(w, id) {
		return
	}
	var req profileChange
	if perr := httpx.DecodeJSON(w, r, &req); perr != nil {
		httpx.WriteError(w, perr)
		return
	}
	u := id.User
	if req.DisplayName != nil {
		var err error
		if u, err = a.acc.SetDisplayName(r.Context(), id.User.ID, *req.DisplayName); err != nil {
			a.acc.WriteError(w, r, err)
			return
		}
	}
	httpx.WriteJSON(w, http.StatusOK, meResult{User: UserView(u), Method: id.Method, CSRFToken: id.CSRFToken})
}

// handlePutAvatar stores the request body as the caller's avatar. The
// body is read up to one byte past the limit, so a larger one is refused
// without being read whole.
func (a *API) handlePutAvatar(w http.ResponseWriter, r *http.Request, id accounts.Identity) {
	if !a.allowProfileChange(w, id) {
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, accounts.MaxAvatar))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		httpx.WriteError(w, accounts.ErrAvatarTooLarge)
		return
	}
	if err != nil {
		a.acc.WriteError(w, r, err)
		return
	}
	u, err := a.acc.SetAvatar(r.Context(), id.User.ID, data)
	if err != nil {
		a.acc.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, meResult{User: UserView(u), Method: id.Method, CSRFToken: id.CSRFToken})
}

func (a *API) handleDeleteAvatar(w http.ResponseWriter, r *http.Request, id accounts.Identity) {
	if !a.allowProfileChange(w, id) {
		return
	}
	u, err := a.acc.RemoveAvatar(r.Context(), id.User.ID)
	if err != nil {
		a.acc.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, meResult{User: UserView(u), Method: id.Method, CSRFToken: id.CSRFToken})
}

func (a *API) handleProfile(w http.ResponseWriter, r *http.Request, _ accounts.Identity) {
	u, err := a.acc.Profile(r.Context(), r.PathValue("username"))
	if err != nil {
		a.acc.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, ProfileJSON{Username: u.Username, DisplayName: u.DisplayName, AvatarURL: accounts.AvatarURL(u)})
}

// handleAvatar serves a user's avatar to logged-in users. The URL carries
// the avatar's version (?v=, as avatar_url gives it): with the current one
// the answer may be cached for a year, since a new avatar gets a new URL;
// without it, caches must revalidate (ETag). The type is the one sniffed
// at upload, always an image type; nosniff and a sandbox CSP keep a
// browser from treating the bytes as anything else.
func (a *API) handleAvatar(w http.ResponseWriter, r *http.Request, _ accounts.Identity) {
	av, u, err := a.acc.Avatar(r.Context(), r.PathValue("username"))
	if err != nil {
		a.acc.WriteError(w, r, err)
		return
	}
	v := accounts.AvatarVersion(u)
	h := w.Header()
	h.Set("ETag", `"`+v+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if r.URL.Query().Get("v") == v {
		h.Set("Cache-Control", "private, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "private, no-cache")
	}
	if etagMatch(r.Header.Get("If-None-Match"), v) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", av.ContentType)
	h.Set("Content-Disposition", "inline")
	h.Set("Content-Length", strconv.Itoa(len(av.Data)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(av.Data)
	}
}

// etagMatch reports whether an If-None-Match header names version v.
func etagMatch(header, v string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == `"`+v+`"` {
			return true
		}
	}
	return false
}
