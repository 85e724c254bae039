// Package postgres is the PostgreSQL implementation of store.Store, for
// cluster mode: several Sori nodes share one database, each with its own
// pool and its own group-commit writer. It passes the same storetest
// conformance suite as the SQLite store.
//
// Cross-node invariants live in the database, never in a node's memory: the
// head of each room's log is rooms.last_seq, read and advanced under that
// row's lock inside the append transaction, so appends to one room from any
// number of nodes are serialized and commit order is seq order. Uploaded
// file bytes are stored in the database too, so every node can serve them.
//
// It must never import hub, chat, session, transport or server: it sits
// below them and knows only the store package.
package postgres
