package server

import (
	"net/http"
	"slices"
	"sync"
)

// routeMux is the server's ServeMux, which also keeps every pattern
// registered on it, so that a test can hold each endpoint to an
// authorization check (TestEveryEndpointIsAuthorized): a route added
// without a row there fails it. Safe for concurrent use, as ServeMux is.
type routeMux struct {
	*http.ServeMux
	mu       sync.Mutex
	patterns []string
}

func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

// Handle registers h for pattern, as http.ServeMux.Handle does.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.record(pattern)
	m.ServeMux.Handle(pattern, h)
}

// HandleFunc registers f for pattern, as http.ServeMux.HandleFunc does.
func (m *routeMux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.record(pattern)
	m.ServeMux.HandleFunc(pattern, f)
}

func (m *routeMux) record(pattern string) {
	m.mu.Lock()
	m.patterns = append(m.patterns, pattern)
	m.mu.Unlock()
}

// routes returns the registered patterns, sorted.
func (m *routeMux) routes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(slices.Values(m.patterns))
}
