package httpx

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sori-dev/sori/internal/protocol"
)

// TestStatusOf pins the one code→status table (issue 11.4): the server API
// used to answer 115 with 409 and chat with 503, and 117/118 with 400.
func TestStatusOf(t *testing.T) {
	for _, c := range []struct {
		err  *protocol.Error
		want int
	}{
		{protocol.ErrInternal, 500},
		{protocol.ErrBadRequest, 400},
		{protocol.ErrBadChannel, 400},
		{protocol.ErrBadData, 400},
		{protocol.ErrPermissionDenied, 403},
		{protocol.ErrRateLimited, 429},
		{protocol.ErrMessageTooLarge, 413},
		{protocol.ErrTokenExpired, 401},
		{protocol.ErrBadToken, 401},
		{protocol.ErrUnavailable, 409},
		{protocol.ErrNotFound, 404},
		{protocol.ErrConflict, 409},
		{protocol.ErrCallFull, 409},
		{protocol.ErrQuota, 507},
		{protocol.ErrStorageLow, 507},
	} {
		if got := StatusOf(c.err.WithMessage("x")); got != c.want {
			t.Errorf("StatusOf(%d) = %d, want %d", c.err.Code, got, c.want)
		}
	}
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, protocol.ErrNotFound.WithMessage("no such room"))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("status %d, want 404", rec.Code)
	}
	var body struct {
		Error protocol.Error `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code != 117 || body.Error.Message != "no such room" {
		t.Fatalf("body %q (%v)", rec.Body.String(), err)
	}
	if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", rec.Header())
	}
}
