// Package layers holds no code: its test reads the module's import graph and
// enforces the layering rule each package states in its doc comment, so the
// rules written in prose cannot drift from the code. It must never import any
// other Sori package.
package layers
