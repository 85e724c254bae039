// Package sqlite is the embedded Store: one SQLite file in the data dir, via
// the pure-Go driver modernc.org/sqlite, with versioned migrations embedded in
// the binary and a group-commit writer for the room event logs.
//
// It must never import hub, session, transport, server or chat.
package sqlite
