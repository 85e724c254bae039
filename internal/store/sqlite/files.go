package sqlite

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/sori-dev/sori/internal/store"
)

const fileCols = `id, room_id, uploader_id, name, content_type, size, sha256, path, created_at`

func scanFile(row interface{ Scan(...any) error }) (store.File, error) {
	var f store.File
	var created int64
	err := row.Scan(&f.ID, &f.RoomID, &f.UploaderID, &f.Name, &f.ContentType, &f.Size, &f.SHA256, &f.Path, &created)
	f.CreatedAt = fromMicros(created)
	return f, err
}

// randomID returns n random bytes in hex.
func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b)
}

// CreateFile implements store.Store.
func (s *Store) CreateFile(ctx context.Context, f store.File) (store.File, error) {
	if f.ID == "" {
		f.ID = randomID(16)
	}
	f.CreatedAt = store.Stamp(f.CreatedAt)
	_, err := s.w.ExecContext(ctx, `INSERT INTO files (`+fileCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.ID, f.RoomID, f.UploaderID, f.Name, f.ContentType, f.Size, f.SHA256, f.Path, toMicros(f.CreatedAt))
	if err != nil {
		return store.File{}, wrap(err, "create file %q in room %d", f.Name, f.RoomID)
	}
	return f, nil
}

// GetFile implements store.Store.
func (s *Store) GetFile(ctx context.Context, id string) (store.File, error) {
	f, err := scanFile(s.r.QueryRowContext(ctx, `SELECT `+fileCols+` FROM files WHERE id = ?`, id))
	if err != nil {
		return store.File{}, wrap(err, "get file %q", id)
	}
	return f, nil
}

// ListFiles implements store.Store. Pages are keyset pages on the
// files_room index: (created_at, id) below the cursor file's.
func (s *Store) ListFiles(ctx context.Context, roomID int64, before string, limit int) ([]store.File, error) {
	q := `SELECT ` + fileCols + ` FROM files WHERE room_id = ?`
	args := []any{roomID}
	if before != "" {
		var at int64
		err := s.r.QueryRowContext(ctx, `SELECT created_at FROM files WHERE id = ? AND room_id = ?`, before, roomID).Scan(&at)
		if err != nil {
			return nil, wrap(err, "list files of room %d before %q", roomID, before)
		}
		q += ` AND (created_at < ? OR created_at = ? AND id < ?)`
		args = append(args, at, at, before)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, store.ClampLimit(limit))...)
	if err != nil {
		return nil, wrap(err, "list files of room %d", roomID)
	}
	out, err := collect(rows, scanFile)
	if err != nil {
		return nil, wrap(err, "list files of room %d", roomID)
	}
	return out, nil
}

// UserFileBytes implements store.Store, on the files_uploader index.
func (s *Store) UserFileBytes(ctx context.Context, userID int64) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(sum(size), 0) FROM files WHERE uploader_id = ?`, userID).Scan(&n); err != nil {
		return 0, wrap(err, "file bytes of user %d", userID)
	}
	return n, nil
}
