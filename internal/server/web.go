package server

import (
	"net/http"

	jsclient "github.com/sori-dev/sori/clients/js"
	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/web"
)

// mountWeb serves the embedded web app at / (the most general pattern, so
// every API route wins over it) and the JavaScript SDK's ES modules at
// /sdk/, which the app imports as /sdk/index.js. Both get the app's
// security headers (CSP, nosniff, no framing).
func (s *Server) mountWeb() {
	s.mux.Handle("GET /sdk/", http.StripPrefix("/sdk", web.Handler(jsclient.Files())))
	s.mux.Handle("GET /", web.Handler(web.App()))
	// Every /api/ path that no route claims is an API caller's mistake:
	// it gets a JSON 404, not the web app's HTML with 200.
	// One pattern per method: a method-less "/api/" would conflict with
	// "GET /" in the mux's precedence rules.
	notFound := func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, protocol.ErrNotFound.WithMessage("no API endpoint "+r.Method+" "+r.URL.Path))
	}
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		s.mux.HandleFunc(m+" /api/", notFound)
	}
}
