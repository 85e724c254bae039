// Package store owns Sori's durable chat data: accounts, sessions and API
// tokens, rooms and membership, each room's append-only event log with its
// materialized messages, full-text search and file metadata. It defines the
// Store interface, its types and sentinel errors; implementations live in
// sub-packages (sqlite now, postgres next) and all of them must pass the
// conformance suite in storetest.
//
// It must never import hub, session, transport, server or chat: those sit on
// top of it, and the chat layer adapts a Store to the hub's Backend.
package store
