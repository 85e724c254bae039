package server

import (
	"net/http"

	jsclient "github.com/sori-dev/sori/clients/js"
	"github.com/sori-dev/sori/web"
)

// mountWeb serves the embedded web app at / (the most general pattern, so
// every API route wins over it) and the JavaScript SDK's ES modules at
// /sdk/, which the app imports as /sdk/index.js. Both get the app's
// security headers (CSP, nosniff, no framing).
func (s *Server) mountWeb() {
	s.mux.Handle("GET /sdk/", http.StripPrefix("/sdk", web.Handler(jsclient.Files())))
	s.mux.Handle("GET /", web.Handler(web.App()))
}
