package server

import (
	"github.com/sori-dev/sori/web"
)

// mountWeb serves the embedded web app at / (the most general pattern, so
// every API route wins over it).
func (s *Server) mountWeb() {
	s.mux.Handle("GET /", web.Handler(web.App()))
}
