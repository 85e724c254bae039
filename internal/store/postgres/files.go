package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/sori-dev/sori/internal/store"
)

const fileCols = `id, room_id, uploader_id, name, content_type, size, sha256, path, created_at`

func scanFile(row pgx.Row) (store.File, error) {
	var f store.File
	err := row.Scan(&f.ID, &f.RoomID, &f.UploaderID, &f.Name, &f.ContentType, &f.Size, &f.SHA256, &f.Path, &f.CreatedAt)
	f.CreatedAt = f.CreatedAt.UTC()
	return f, err
}

// CreateFile implements store.Store.
func (s *Store) CreateFile(ctx context.Context, f store.File) (store.File, error) {
	if f.ID == "" {
		f.ID = randomID(16)
	}
	f.CreatedAt = store.Stamp(f.CreatedAt)
	err := s.execOne(ctx, `INSERT INTO files (`+fileCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		f.ID, f.RoomID, f.UploaderID, f.Name, f.ContentType, f.Size, f.SHA256, f.Path, f.CreatedAt)
	if err != nil {
		return store.File{}, s.wrap(err, "create file %q in room %d", f.Name, f.RoomID)
	}
	return f, nil
}

// GetFile implements store.Store.
func (s *Store) GetFile(ctx context.Context, id string) (store.File, error) {
	f, err := scanFile(s.queryRow(ctx, `SELECT `+fileCols+` FROM files WHERE id = $1`, id))
	if err != nil {
		return store.File{}, s.wrap(err, "get file %q", id)
	}
	return f, nil
}

// ListFiles implements store.Store. Pages are keyset pages on the
// files_room index: (created_at, id) below the cursor file's.
func (s *Store) ListFiles(ctx context.Context, roomID int64, before string, limit int) ([]store.File, error) {
	q := `SELECT ` + fileCols + ` FROM files WHERE room_id = $1`
	args := []any{roomID, store.ClampLimit(limit)}
	if before != "" {
		var exists bool
		err := s.queryRow(ctx, `SELECT true FROM files WHERE id = $1 AND room_id = $2`, before, roomID).Scan(&exists)
		if err != nil {
			return nil, s.wrap(err, "list files of room %d before %q", roomID, before)
		}
		q += ` AND (created_at, id) < (SELECT created_at, id FROM files WHERE id = $3)`
		args = append(args, before)
	}
	out, err := collect(ctx, s, s.pool, scanFile, q+` ORDER BY created_at DESC, id DESC LIMIT $2`, args...)
	if err != nil {
		return nil, s.wrap(err, "list files of room %d", roomID)
	}
	return out, nil
}

// PutBlob stores the bytes of an upload under id (the file's random id), so
// that any node can serve them; ErrConflict if id is taken. Uploads are
// bounded by the server's upload limit, so one bytea row is fine.
func (s *Store) PutBlob(ctx context.Context, id string, data []byte) error {
	if data == nil {
		data = []byte{}
	}
	err := s.execOne(ctx, `INSERT INTO file_blobs (id, data, created_at) VALUES ($1, $2, $3)`, id, data, now())
	if err != nil {
		return s.wrap(err, "store bytes of file %q", id)
	}
	return nil
}

// GetBlob returns the bytes stored under id; ErrNotFound if none are.
func (s *Store) GetBlob(ctx context.Context, id string) ([]byte, error) {
	var data []byte
	if err := s.queryRow(ctx, `SELECT data FROM file_blobs WHERE id = $1`, id).Scan(&data); err != nil {
		return nil, s.wrap(err, "read bytes of file %q", id)
	}
	return data, nil
}

// DeleteBlob removes the bytes stored under id, as when an upload fails
// after its bytes were stored; ErrNotFound if none are.
func (s *Store) DeleteBlob(ctx context.Context, id string) error {
	if err := s.execOne(ctx, `DELETE FROM file_blobs WHERE id = $1`, id); err != nil {
		return s.wrap(err, "delete bytes of file %q", id)
	}
	return nil
}

// UserFileBytes implements store.Store, on the files_uploader index.
func (s *Store) UserFileBytes(ctx context.Context, userID int64) (int64, error) {
	var n int64
	if err := s.queryRow(ctx, `SELECT coalesce(sum(size), 0)::bigint FROM files WHERE uploader_id = $1`, userID).Scan(&n); err != nil {
		return 0, s.wrap(err, "file bytes of user %d", userID)
	}
	return n, nil
}
