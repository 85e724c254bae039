// Package jsclient embeds the JavaScript client SDK (clients/js/src) so that
// `sori serve` can serve it to browsers at /sdk/ with no build step: the web
// app imports /sdk/index.js. It holds no Go logic and must import nothing of
// the server.
package jsclient

import (
	"embed"
	"io/fs"
)

//go:embed src
var files embed.FS

// Files returns the SDK's ES modules, rooted at the src directory
// (index.js at the top).
func Files() fs.FS {
	sub, err := fs.Sub(files, "src")
	if err != nil {
		panic(err) // "src" is embedded above; Sub fails only on an invalid name
	}
	return sub
}
