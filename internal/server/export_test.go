package server

// Routes returns the patterns registered on s's mux (for the
// authorization audit in package server_test).
func Routes(s *Server) []string { return s.mux.routes() }
