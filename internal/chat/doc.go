// Package chat is Sori's chat service: the rules on top of the hub and the
// store. It owns rooms, membership and roles, messages (posted, edited,
// deleted, reacted to), read receipts, typing, per-room presence, search and
// files, and adapts the store to the hub as the Backend of the "chat"
// namespace, so that a room's event seq is its channel offset. It must never
// import session, transport or server; HTTP handlers live in chat/rest.
package chat
