// Package web embeds Sori's browser app (web/app) into the binary and serves
// it with the security headers a chat client needs: a strict Content Security
// Policy (scripts and styles only from this origin, no inline code), nosniff
// and no framing. It must never import server internals.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed all:app
var files embed.FS

// ContentSecurityPolicy is sent with every page. Messages are rendered as text
// by the app; the policy is the second line of defence should that ever fail.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; font-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the app's static files from root (e.g. the embedded app or
// the JS SDK) with security headers. Unknown paths without an extension get
// index.html, so client-side routes survive a reload.
func Handler(root fs.FS) http.Handler {
	fileServer := http.FileServer(http.FS(root))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SecurityHeaders(w.Header())
		p := strings.TrimPrefix(r.URL.Path, "/")
		if p != "" && !strings.Contains(p[strings.LastIndex(p, "/")+1:], ".") {
			if _, err := fs.Stat(root, p); err != nil {
				r2 := r.Clone(r.Context())
				r2.URL.Path = "/"
				fileServer.ServeHTTP(w, r2)
				return
			}
		}
		w.Header().Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
}

// SecurityHeaders sets the headers every app response carries.
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
}

// App returns the embedded web app's files.
func App() fs.FS {
	sub, err := fs.Sub(files, "app")
	if err != nil {
		panic(err) // "app" is embedded above; Sub fails only on an invalid name
	}
	return sub
}
