package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sori-dev/sori/internal/store"
)

const roomCols = `r.id, r.name, r.title, r.topic, r.kind, r.created_by, r.created_at, r.epoch, r.last_seq`

func scanRoomInto(r *store.Room, dest ...any) []any {
	return append([]any{&r.ID, &r.Name, &r.Title, &r.Topic, &r.Kind, &r.CreatedBy, &r.CreatedAt, &r.Epoch, (*seqCol)(&r.LastSeq)}, dest...)
}

func scanRoom(row pgx.Row) (store.Room, error) {
	var r store.Room
	err := row.Scan(scanRoomInto(&r)...)
	r.CreatedAt = r.CreatedAt.UTC()
	return r, err
}

// newEpoch returns a room's random epoch.
func newEpoch() string { return randomID(8) }

// CreateRoom implements store.Store.
func (s *Store) CreateRoom(ctx context.Context, r store.Room) (store.Room, error) {
	if r.Kind != store.RoomPublic && r.Kind != store.RoomPrivate {
		return store.Room{}, fmt.Errorf("store: create room %q: kind %q: %w", r.Name, r.Kind, store.ErrInvalid)
	}
	r.CreatedAt, r.Epoch, r.LastSeq = store.Stamp(r.CreatedAt), newEpoch(), 0
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO rooms (name, name_key, title, topic, kind, created_by, created_at, epoch)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			r.Name, store.FoldName(r.Name), r.Title, r.Topic, string(r.Kind), r.CreatedBy, r.CreatedAt, r.Epoch).Scan(&r.ID)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO members (room_id, user_id, role, joined_at) VALUES ($1, $2, 'owner', $3)`,
			r.ID, r.CreatedBy, r.CreatedAt)
		return err
	})
	if err != nil {
		return store.Room{}, s.wrap(err, "create room %q", r.Name)
	}
	return r, nil
}

// GetOrCreateDirectRoom implements store.Store. Racing creators, on any
// node, meet at the unique direct_key: the loser's INSERT does nothing and
// it reads the winner's room.
func (s *Store) GetOrCreateDirectRoom(ctx context.Context, a, b int64) (store.Room, bool, error) {
	if a == b {
		return store.Room{}, false, fmt.Errorf("store: direct room of user %d with itself: %w", a, store.ErrInvalid)
	}
	lo, hi := min(a, b), max(a, b)
	key := fmt.Sprintf("%d:%d", lo, hi)
	var r store.Room
	created := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		r, created = store.Room{}, false
		r2, err := scanRoom(tx.QueryRow(ctx, `SELECT `+roomCols+` FROM rooms r WHERE direct_key = $1`, key))
		if err == nil {
			r = r2
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		r = store.Room{Name: "dm:" + key, Kind: store.RoomDirect, CreatedBy: a, CreatedAt: now(), Epoch: newEpoch()}
		err = tx.QueryRow(ctx, `INSERT INTO rooms (name, direct_key, kind, created_by, created_at, epoch)
			VALUES ($1, $2, 'direct', $3, $4, $5) ON CONFLICT (direct_key) DO NOTHING RETURNING id`,
			r.Name, key, a, r.CreatedAt, r.Epoch).Scan(&r.ID)
		if errors.Is(err, pgx.ErrNoRows) {
			// Another transaction created it after our read; it has
			// committed (the conflict check waited for it), so a new
			// statement sees it.
			r, err = scanRoom(tx.QueryRow(ctx, `SELECT `+roomCols+` FROM rooms r WHERE direct_key = $1`, key))
			return err
		}
		if err != nil {
			return err
		}
		for _, u := range []int64{lo, hi} {
			if _, err := tx.Exec(ctx, `INSERT INTO members (room_id, user_id, role, joined_at) VALUES ($1, $2, 'member', $3)`,
				r.ID, u, r.CreatedAt); err != nil {
				return err
			}
		}
		created = true
		return nil
	})
	if err != nil {
		return store.Room{}, false, s.wrap(err, "direct room of users %d and %d", a, b)
	}
	return r, created, nil
}

// GetRoom implements store.Store.
func (s *Store) GetRoom(ctx context.Context, id int64) (store.Room, error) {
	r, err := scanRoom(s.queryRow(ctx, `SELECT `+roomCols+` FROM rooms r WHERE id = $1`, id))
	if err != nil {
		return store.Room{}, s.wrap(err, "get room %d", id)
	}
	return r, nil
}

// GetRoomByName implements store.Store.
func (s *Store) GetRoomByName(ctx context.Context, name string) (store.Room, error) {
	r, err := scanRoom(s.queryRow(ctx, `SELECT `+roomCols+` FROM rooms r WHERE name_key = $1`, store.FoldName(name)))
	if err != nil {
		return store.Room{}, s.wrap(err, "get room %q", name)
	}
	return r, nil
}

// ListPublicRooms implements store.Store.
func (s *Store) ListPublicRooms(ctx context.Context) ([]store.Room, error) {
	out, err := collect(ctx, s, s.pool, scanRoom, `SELECT `+roomCols+` FROM rooms r WHERE kind = 'public' ORDER BY name_key COLLATE "C"`)
	if err != nil {
		return nil, s.wrap(err, "list public rooms")
	}
	return out, nil
}

// ListUserRooms implements store.Store. The unread count is a range scan of
// the room's messages after the read receipt, on the primary key.
func (s *Store) ListUserRooms(ctx context.Context, userID int64) ([]store.RoomSummary, error) {
	out, err := collect(ctx, s, s.pool, func(row pgx.Row) (store.RoomSummary, error) {
		var rs store.RoomSummary
		err := row.Scan(scanRoomInto(&rs.Room, &rs.Role, (*seqCol)(&rs.LastReadSeq), &rs.Notify, &rs.Unread, &rs.Mentions)...)
		rs.CreatedAt = rs.CreatedAt.UTC()
		if rs.Kind == store.RoomDirect {
			rs.Mentions = rs.Unread
		}
		return rs, err
	}, `SELECT `+roomCols+`, m.role, m.last_read_seq, m.notify,
			(SELECT count(*) FROM messages x WHERE x.room_id = r.id AND x.seq > m.last_read_seq
				AND x.author_id <> m.user_id AND NOT x.deleted),
			`+unreadMentions+`
		FROM members m JOIN rooms r ON r.id = m.room_id
		WHERE m.user_id = $1
		ORDER BY greatest(r.created_at, r.last_event_at) DESC, r.id DESC`, userID)
	if err != nil {
		return nil, s.wrap(err, "list rooms of user %d", userID)
	}
	return out, nil
}

// SetTopic implements store.Store.
func (s *Store) SetTopic(ctx context.Context, roomID int64, topic string) error {
	if err := s.execOne(ctx, `UPDATE rooms SET topic = $1 WHERE id = $2`, topic, roomID); err != nil {
		return s.wrap(err, "set topic of room %d", roomID)
	}
	return nil
}

const memberCols = `room_id, user_id, role, joined_at, last_read_seq, notify`

func scanMember(row pgx.Row) (store.Member, error) {
	var m store.Member
	err := row.Scan(&m.RoomID, &m.UserID, &m.Role, &m.JoinedAt, (*seqCol)(&m.LastReadSeq), &m.Notify)
	m.JoinedAt = m.JoinedAt.UTC()
	return m, err
}

// AddMember implements store.Store.
func (s *Store) AddMember(ctx context.Context, roomID, userID int64, role store.Role) (store.Member, error) {
	if !role.Valid() {
		return store.Member{}, fmt.Errorf("store: add user %d to room %d: role %q: %w", userID, roomID, role, store.ErrInvalid)
	}
	m := store.Member{RoomID: roomID, UserID: userID, Role: role, JoinedAt: now(), Notify: store.NotifyAll}
	err := s.execOne(ctx, `INSERT INTO members (room_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)`,
		roomID, userID, string(role), m.JoinedAt)
	if err != nil {
		return store.Member{}, s.wrap(err, "add user %d to room %d", userID, roomID)
	}
	return m, nil
}

// lastOwnerGuard is true for the row of a room's only owner while others
// remain: removing or demoting it would leave members without an owner.
// Under read committed two transactions would each see the other owner, so
// guardedMemberChange locks the room's row first: the guard then sees every
// committed change of that room.
const lastOwnerGuard = `(role = 'owner'
	AND (SELECT count(*) FROM members o WHERE o.room_id = members.room_id AND o.role = 'owner') = 1
	AND (SELECT count(*) FROM members a WHERE a.room_id = members.room_id) > 1)`

// guardedMemberChange runs a guarded statement on one member's row with
// the room locked; no row changed is ErrNotFound (not a member) or
// ErrConflict (the last owner).
func (s *Store) guardedMemberChange(ctx context.Context, roomID, userID int64, sql string, args ...any) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var id int64
		if err := tx.QueryRow(ctx, `SELECT id FROM rooms WHERE id = $1 FOR UPDATE`, roomID).Scan(&id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, sql, args...)
		if err != nil || tag.RowsAffected() > 0 {
			return err
		}
		var role string
		if err := tx.QueryRow(ctx, `SELECT role FROM members WHERE room_id = $1 AND user_id = $2`, roomID, userID).Scan(&role); err != nil {
			return err
		}
		return fmt.Errorf("the room's last owner: %w", store.ErrConflict)
	})
}

// RemoveMember implements store.Store.
func (s *Store) RemoveMember(ctx context.Context, roomID, userID int64) error {
	err := s.guardedMemberChange(ctx, roomID, userID,
		`DELETE FROM members WHERE room_id = $1 AND user_id = $2 AND NOT `+lastOwnerGuard, roomID, userID)
	if err != nil {
		return s.wrap(err, "remove user %d from room %d", userID, roomID)
	}
	return nil
}

// GetMember implements store.Store.
func (s *Store) GetMember(ctx context.Context, roomID, userID int64) (store.Member, error) {
	m, err := scanMember(s.queryRow(ctx, `SELECT `+memberCols+` FROM members WHERE room_id = $1 AND user_id = $2`, roomID, userID))
	if err != nil {
		return store.Member{}, s.wrap(err, "get member %d of room %d", userID, roomID)
	}
	return m, nil
}

// ListMembers implements store.Store.
func (s *Store) ListMembers(ctx context.Context, roomID int64) ([]store.Member, error) {
	out, err := collect(ctx, s, s.pool, scanMember, `SELECT `+memberCols+` FROM members WHERE room_id = $1 ORDER BY joined_at, user_id`, roomID)
	if err != nil {
		return nil, s.wrap(err, "list members of room %d", roomID)
	}
	return out, nil
}

// SetRole implements store.Store.
func (s *Store) SetRole(ctx context.Context, roomID, userID int64, role store.Role) error {
	if !role.Valid() {
		return fmt.Errorf("store: set role of user %d in room %d: role %q: %w", userID, roomID, role, store.ErrInvalid)
	}
	err := s.guardedMemberChange(ctx, roomID, userID, `UPDATE members SET role = $1 WHERE room_id = $2 AND user_id = $3
		AND NOT ($1 <> 'owner' AND `+lastOwnerGuard+`)`, string(role), roomID, userID)
	if err != nil {
		return s.wrap(err, "set role of user %d in room %d", userID, roomID)
	}
	return nil
}

// SetLastRead implements store.Store.
func (s *Store) SetLastRead(ctx context.Context, roomID, userID int64, readSeq uint64) (uint64, error) {
	var got seqCol
	err := s.queryRow(ctx, `UPDATE members m
		SET last_read_seq = greatest(m.last_read_seq, least($1, r.last_seq))
		FROM rooms r WHERE r.id = m.room_id AND m.room_id = $2 AND m.user_id = $3
		RETURNING m.last_read_seq`, clampSeq(readSeq), roomID, userID).Scan(&got)
	if err != nil {
		return 0, s.wrap(err, "set last read of user %d in room %d", userID, roomID)
	}
	return uint64(got), nil
}

// seqCol scans a non-negative bigint into a uint64.
type seqCol uint64

// ScanInt64 implements pgtype.Int64Scanner.
func (q *seqCol) ScanInt64(v pgtype.Int8) error {
	if !v.Valid || v.Int64 < 0 {
		return fmt.Errorf("seq column holds %v", v)
	}
	*q = seqCol(v.Int64)
	return nil
}
