package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sori-dev/sori/internal/store"
)

var roomCols = `r.id, r.name, r.title, r.topic, r.kind, r.created_by, r.created_at, r.epoch, ` + lastSeqOfRoom

// lastSeqOf is SQL for the latest seq of the room whose id is the given
// expression: the min/max optimization makes it one seek on the events key.
func lastSeqOf(room string) string {
	return `(SELECT coalesce(max(seq), 0) FROM events WHERE room_id = ` + room + `)`
}

var lastSeqOfRoom = lastSeqOf("r.id")

func scanRoomInto(r *store.Room, dest ...any) []any {
	return append([]any{&r.ID, &r.Name, &r.Title, &r.Topic, &r.Kind, &r.CreatedBy, (*micros)(&r.CreatedAt), &r.Epoch, (*seq)(&r.LastSeq)}, dest...)
}

func scanRoom(row interface{ Scan(...any) error }) (store.Room, error) {
	var r store.Room
	err := row.Scan(scanRoomInto(&r)...)
	return r, err
}

// micros scans a stored unix-microsecond integer into a time.Time.
type micros time.Time

// Scan implements sql.Scanner.
func (m *micros) Scan(v any) error {
	n, ok := v.(int64)
	if !ok {
		return fmt.Errorf("time column holds %T", v)
	}
	*m = micros(fromMicros(n))
	return nil
}

// seq scans a non-negative stored integer into a uint64.
type seq uint64

// Scan implements sql.Scanner.
func (q *seq) Scan(v any) error {
	n, ok := v.(int64)
	if !ok || n < 0 {
		return fmt.Errorf("seq column holds %T %v", v, v)
	}
	*q = seq(n)
	return nil
}

// newEpoch returns a room's random epoch.
func newEpoch() string { return randomID(8) }

// CreateRoom implements store.Store.
func (s *Store) CreateRoom(ctx context.Context, r store.Room) (store.Room, error) {
	if r.Kind != store.RoomPublic && r.Kind != store.RoomPrivate {
		return store.Room{}, fmt.Errorf("store: create room %q: kind %q: %w", r.Name, r.Kind, store.ErrInvalid)
	}
	r.CreatedAt, r.Epoch, r.LastSeq = store.Stamp(r.CreatedAt), newEpoch(), 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO rooms (name, name_key, title, topic, kind, created_by, created_at, epoch)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			r.Name, store.FoldName(r.Name), r.Title, r.Topic, string(r.Kind), r.CreatedBy, toMicros(r.CreatedAt), r.Epoch).Scan(&r.ID)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO members (room_id, user_id, role, joined_at) VALUES (?, ?, 'owner', ?)`,
			r.ID, r.CreatedBy, toMicros(r.CreatedAt))
		return err
	})
	if err != nil {
		return store.Room{}, wrap(err, "create room %q", r.Name)
	}
	return r, nil
}

// GetOrCreateDirectRoom implements store.Store.
func (s *Store) GetOrCreateDirectRoom(ctx context.Context, a, b int64) (store.Room, bool, error) {
	if a == b {
		return store.Room{}, false, fmt.Errorf("store: direct room of user %d with itself: %w", a, store.ErrInvalid)
	}
	lo, hi := min(a, b), max(a, b)
	key := fmt.Sprintf("%d:%d", lo, hi)
	var r store.Room
	created := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		r, created = store.Room{}, false
		r2, err := scanRoom(tx.QueryRowContext(ctx, `SELECT `+roomCols+` FROM rooms r WHERE direct_key = ?`, key))
		if err == nil {
			r = r2
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		r = store.Room{Name: "dm:" + key, Kind: store.RoomDirect, CreatedBy: a, CreatedAt: now(), Epoch: newEpoch()}
		err = tx.QueryRowContext(ctx, `INSERT INTO rooms (name, direct_key, kind, created_by, created_at, epoch)
			VALUES (?, ?, 'direct', ?, ?, ?) RETURNING id`, r.Name, key, a, toMicros(r.CreatedAt), r.Epoch).Scan(&r.ID)
		if err != nil {
			return err
		}
		for _, u := range []int64{lo, hi} {
			if _, err := tx.ExecContext(ctx, `INSERT INTO members (room_id, user_id, role, joined_at) VALUES (?, ?, 'member', ?)`,
				r.ID, u, toMicros(r.CreatedAt)); err != nil {
				return err
			}
		}
		created = true
		return nil
	})
	if err != nil {
		return store.Room{}, false, wrap(err, "direct room of users %d and %d", a, b)
	}
	return r, created, nil
}

// GetRoom implements store.Store.
func (s *Store) GetRoom(ctx context.Context, id int64) (store.Room, error) {
	r, err := scanRoom(s.r.QueryRowContext(ctx, `SELECT `+roomCols+` FROM rooms r WHERE id = ?`, id))
	if err != nil {
		return store.Room{}, wrap(err, "get room %d", id)
	}
	return r, nil
}

// GetRoomByName implements store.Store.
func (s *Store) GetRoomByName(ctx context.Context, name string) (store.Room, error) {
	r, err := scanRoom(s.r.QueryRowContext(ctx, `SELECT `+roomCols+` FROM rooms r WHERE name_key = ?`, store.FoldName(name)))
	if err != nil {
		return store.Room{}, wrap(err, "get room %q", name)
	}
	return r, nil
}

// ListPublicRooms implements store.Store.
func (s *Store) ListPublicRooms(ctx context.Context) ([]store.Room, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+roomCols+` FROM rooms r WHERE kind = 'public' ORDER BY name_key`)
	if err != nil {
		return nil, wrap(err, "list public rooms")
	}
	out, err := collect(rows, scanRoom)
	if err != nil {
		return nil, wrap(err, "list public rooms")
	}
	return out, nil
}

// ListUserRooms implements store.Store. The unread count is a range scan
// of the room's messages after the read receipt, on the (room_id, seq) index.
func (s *Store) ListUserRooms(ctx context.Context, userID int64) ([]store.RoomSummary, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+roomCols+`, m.role, m.last_read_seq, m.notify,
			(SELECT count(*) FROM messages x WHERE x.room_id = r.id AND x.seq > m.last_read_seq
				AND x.author_id != m.user_id AND x.deleted = 0),
			`+unreadMentions+`
		FROM members m JOIN rooms r ON r.id = m.room_id
		WHERE m.user_id = ?
		ORDER BY max(r.created_at, coalesce((SELECT created_at FROM events WHERE room_id = r.id ORDER BY seq DESC LIMIT 1), 0)) DESC,
			r.id DESC`, userID)
	if err != nil {
		return nil, wrap(err, "list rooms of user %d", userID)
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (store.RoomSummary, error) {
		var rs store.RoomSummary
		err := row.Scan(scanRoomInto(&rs.Room, &rs.Role, (*seq)(&rs.LastReadSeq), &rs.Notify, &rs.Unread, &rs.Mentions)...)
		if rs.Kind == store.RoomDirect {
			rs.Mentions = rs.Unread
		}
		return rs, err
	})
	if err != nil {
		return nil, wrap(err, "list rooms of user %d", userID)
	}
	return out, nil
}

// SetTopic implements store.Store.
func (s *Store) SetTopic(ctx context.Context, roomID int64, topic string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE rooms SET topic = ? WHERE id = ?`, topic, roomID)
	if err = mustAffect(res, err); err != nil {
		return wrap(err, "set topic of room %d", roomID)
	}
	return nil
}

const memberCols = `room_id, user_id, role, joined_at, last_read_seq, notify`

func scanMember(row interface{ Scan(...any) error }) (store.Member, error) {
	var m store.Member
	err := row.Scan(&m.RoomID, &m.UserID, &m.Role, (*micros)(&m.JoinedAt), (*seq)(&m.LastReadSeq), &m.Notify)
	return m, err
}

// AddMember implements store.Store.
func (s *Store) AddMember(ctx context.Context, roomID, userID int64, role store.Role) (store.Member, error) {
	if !role.Valid() {
		return store.Member{}, fmt.Errorf("store: add user %d to room %d: role %q: %w", userID, roomID, role, store.ErrInvalid)
	}
	m := store.Member{RoomID: roomID, UserID: userID, Role: role, JoinedAt: now(), Notify: store.NotifyAll}
	_, err := s.w.ExecContext(ctx, `INSERT INTO members (room_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)`,
		roomID, userID, string(role), toMicros(m.JoinedAt))
	if err != nil {
		return store.Member{}, wrap(err, "add user %d to room %d", userID, roomID)
	}
	return m, nil
}

// lastOwnerGuard is true for the row of a room's only owner while others
// remain: removing or demoting that row would leave members without an
// owner. It is part of the same statement as the change, so two owners
// leaving or demoting each other at once cannot both pass it (the writer is
// one connection: statements are serialized).
const lastOwnerGuard = `(role = 'owner'
	AND (SELECT count(*) FROM members o WHERE o.room_id = members.room_id AND o.role = 'owner') = 1
	AND (SELECT count(*) FROM members a WHERE a.room_id = members.room_id) > 1)`

// guarded turns "no row changed" of a guarded statement into ErrNotFound
// (not a member) or ErrConflict (the last owner).
func (s *Store) guarded(ctx context.Context, res sql.Result, err error, roomID, userID int64) error {
	if err = mustAffect(res, err); !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if _, gerr := s.GetMember(ctx, roomID, userID); gerr != nil {
		return sql.ErrNoRows
	}
	return fmt.Errorf("the room's last owner: %w", store.ErrConflict)
}

// RemoveMember implements store.Store.
func (s *Store) RemoveMember(ctx context.Context, roomID, userID int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM members WHERE room_id = ? AND user_id = ? AND NOT `+lastOwnerGuard, roomID, userID)
	if err = s.guarded(ctx, res, err, roomID, userID); err != nil {
		return wrap(err, "remove user %d from room %d", userID, roomID)
	}
	return nil
}

// GetMember implements store.Store.
func (s *Store) GetMember(ctx context.Context, roomID, userID int64) (store.Member, error) {
	m, err := scanMember(s.r.QueryRowContext(ctx, `SELECT `+memberCols+` FROM members WHERE room_id = ? AND user_id = ?`, roomID, userID))
	if err != nil {
		return store.Member{}, wrap(err, "get member %d of room %d", userID, roomID)
	}
	return m, nil
}

// ListMembers implements store.Store.
func (s *Store) ListMembers(ctx context.Context, roomID int64) ([]store.Member, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+memberCols+` FROM members WHERE room_id = ? ORDER BY joined_at, user_id`, roomID)
	if err != nil {
		return nil, wrap(err, "list members of room %d", roomID)
	}
	out, err := collect(rows, scanMember)
	if err != nil {
		return nil, wrap(err, "list members of room %d", roomID)
	}
	return out, nil
}

// SetRole implements store.Store.
func (s *Store) SetRole(ctx context.Context, roomID, userID int64, role store.Role) error {
	if !role.Valid() {
		return fmt.Errorf("store: set role of user %d in room %d: role %q: %w", userID, roomID, role, store.ErrInvalid)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE members SET role = ?1 WHERE room_id = ?2 AND user_id = ?3
		AND NOT (?1 != 'owner' AND `+lastOwnerGuard+`)`, string(role), roomID, userID)
	if err = s.guarded(ctx, res, err, roomID, userID); err != nil {
		return wrap(err, "set role of user %d in room %d", userID, roomID)
	}
	return nil
}

// SetLastRead implements store.Store.
func (s *Store) SetLastRead(ctx context.Context, roomID, userID int64, readSeq uint64) (uint64, error) {
	var got seq
	err := s.w.QueryRowContext(ctx, `UPDATE members
		SET last_read_seq = max(last_read_seq, min(?, `+lastSeqOf("members.room_id")+`))
		WHERE room_id = ? AND user_id = ? RETURNING last_read_seq`, clampSeq(readSeq), roomID, userID).Scan(&got)
	if err != nil {
		return 0, wrap(err, "set last read of user %d in room %d", userID, roomID)
	}
	return uint64(got), nil
}

// clampSeq converts a caller's seq to a storable integer; seqs never come
// near 2^63, so larger values only mean "the end".
func clampSeq(q uint64) int64 {
	if q > 1<<62 {
		return 1 << 62
	}
	return int64(q)
}

// inTx runs fn in a transaction on the writer connection.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
