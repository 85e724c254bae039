package chat

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
)

// filesDir is where uploads live, relative to the data dir.
const filesDir = "files"

// blobPrefix starts the Path of a file whose bytes are in Config.Blobs
// ("blob:<id>") rather than under the data dir.
const blobPrefix = "blob:"

// Blobs keeps uploaded bytes where every node of a cluster can read them
// (the PostgreSQL store implements it). Errors wrap store.ErrNotFound and
// store.ErrConflict like the store's.
type Blobs interface {
	PutBlob(ctx context.Context, id string, data []byte) error
	GetBlob(ctx context.Context, id string) ([]byte, error)
	DeleteBlob(ctx context.Context, id string) error
}

// inlineTypes are the only types served for display in the page: raster
// images a browser cannot execute. Everything else (SVG, HTML, PDF, …) is
// served as an attachment.
var inlineTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// Inline reports whether a file of contentType may be shown inline.
func Inline(contentType string) bool { return inlineTypes[contentType] }

var errFileTooLarge = protocol.ErrMessageTooLarge.WithMessage("file exceeds the upload size limit")

// DefaultUploadQuota is the bytes of files one user may keep stored when
// Config.UploadQuota is not set: 256 MiB.
const DefaultUploadQuota = 256 << 20

// Upload refusals for storage.
var (
	errQuota      = protocol.ErrQuota.WithMessage("your files use up your storage quota: delete some or ask an admin")
	errStorageLow = protocol.ErrStorageLow.WithMessage("the server is low on disk space: uploads are paused")
)

// checkStorage refuses an upload when the user's files already fill the
// quota or the disk is down to its reserve, and returns how many bytes the
// user may still store.
func (s *Service) checkStorage(ctx context.Context, actor store.User) (int64, error) {
	if s.cfg.DiskReserve > 0 && s.cfg.DataDir != "" {
		free, err := s.cfg.FreeSpace(s.cfg.DataDir)
		if err != nil {
			return 0, fmt.Errorf("chat: free space of the data dir: %w", err)
		}
		if free < s.cfg.DiskReserve+s.cfg.MaxFileSize {
			s.log.Warn("upload refused: disk space at the reserve", "free", free, "reserve", s.cfg.DiskReserve)
			return 0, errStorageLow
		}
	}
	used, err := s.st.UserFileBytes(ctx, actor.ID)
	if err != nil {
		return 0, fmt.Errorf("chat: storage used by %s: %w", actor.Username, err)
	}
	if used >= s.cfg.UploadQuota {
		return 0, errQuota
	}
	return s.cfg.UploadQuota - used, nil
}

// MaxFileSize returns the upload limit in bytes.
func (s *Service) MaxFileSize() int64 { return s.cfg.MaxFileSize }

// Upload stores body as a file of a room that actor is a member of. The
// bytes go to a file with a random name under the data dir (never the
// user's name, which is only metadata), or to Config.Blobs when set; the
// type is sniffed from the content, not taken from the client. Nothing is
// kept if any step fails.
func (s *Service) Upload(ctx context.Context, actor store.User, roomID int64, name string, body io.Reader) (store.File, error) {
	if perr := ValidateFileName(name); perr != nil {
		return store.File{}, perr
	}
	if s.cfg.DataDir == "" && s.cfg.Blobs == nil {
		return store.File{}, protocol.ErrUnavailable.WithMessage("file uploads are not configured")
	}
	if _, err := s.member(ctx, actor, roomID); err != nil {
		return store.File{}, err
	}
	left, err := s.checkStorage(ctx, actor)
	if err != nil {
		return store.File{}, err
	}
	limit := min(s.cfg.MaxFileSize, left)
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	var (
		dst  io.Writer
		rel  string
		f    *os.File
		mem  bytes.Buffer // the bytes, when they go to Blobs (bounded by MaxFileSize)
		keep bool
	)
	if s.cfg.Blobs != nil {
		dst, rel = &mem, blobPrefix+id
	} else {
		dir := filepath.Join(s.cfg.DataDir, filesDir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return store.File{}, fmt.Errorf("chat: files dir: %w", err)
		}
		rel = filepath.Join(filesDir, id)
		full := filepath.Join(s.cfg.DataDir, rel)
		var err error
		if f, err = os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return store.File{}, fmt.Errorf("chat: create upload: %w", err)
		}
		dst = f
		defer func() {
			if !keep {
				_ = os.Remove(full)
			}
		}()
	}
	sum := sha256.New()
	head := make([]byte, 0, 512)
	n, err := io.Copy(io.MultiWriter(dst, sum, &headWriter{buf: &head}), io.LimitReader(body, limit+1))
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig) || n > s.cfg.MaxFileSize:
		return store.File{}, errFileTooLarge
	case n > limit:
		return store.File{}, errQuota
	case err != nil:
		return store.File{}, fmt.Errorf("chat: write upload: %w", err)
	case n == 0:
		return store.File{}, badRequest("file is empty")
	}
	if s.cfg.Blobs != nil {
		if err := s.cfg.Blobs.PutBlob(ctx, id, mem.Bytes()); err != nil {
			return store.File{}, fmt.Errorf("chat: store upload: %w", err)
		}
		defer func() {
			if !keep {
				_ = s.cfg.Blobs.DeleteBlob(context.WithoutCancel(ctx), id)
			}
		}()
	}
	file, err := s.st.CreateFile(ctx, store.File{
		ID: id, RoomID: roomID, UploaderID: actor.ID, Name: name, ContentType: http.DetectContentType(head),
		Size: n, SHA256: hex.EncodeToString(sum.Sum(nil)), Path: rel,
	})
	if err != nil {
		return store.File{}, storeErr(err, errNoRoom, "file exists")
	}
	keep = true
	s.signal(ctx, roomID, actor.Username, map[string]any{"type": "file", "user": actor.Username, "file": id, "name": name})
	return file, nil
}

// headWriter keeps the first 512 bytes written, for content sniffing.
type headWriter struct{ buf *[]byte }

func (h *headWriter) Write(p []byte) (int, error) {
	if room := cap(*h.buf) - len(*h.buf); room > 0 {
		*h.buf = append(*h.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// Files lists up to limit of a room's files, newest first, for members;
// before (optional) is the id of the last file of the previous page.
func (s *Service) Files(ctx context.Context, actor store.User, roomID int64, before string, limit int) ([]store.File, error) {
	if _, err := s.member(ctx, actor, roomID); err != nil {
		return nil, err
	}
	fs, err := s.st.ListFiles(ctx, roomID, before, limit)
	if errors.Is(err, store.ErrNotFound) {
		return nil, protocol.ErrBadRequest.WithMessage("before must be the id of a file of this room")
	}
	if err != nil {
		return nil, fmt.Errorf("chat: files of room %d: %w", roomID, err)
	}
	return fs, nil
}

// OpenFile returns a file's metadata and its bytes, for members of its room
// only. A file of a room actor is not in is reported as not found, so that
// file ids cannot be probed. The caller closes the reader.
func (s *Service) OpenFile(ctx context.Context, actor store.User, id string) (store.File, io.ReadCloser, error) {
	errNoFile := protocol.ErrNotFound.WithMessage("no such file")
	if len(id) != 32 {
		return store.File{}, nil, errNoFile
	}
	if _, err := hex.DecodeString(id); err != nil {
		return store.File{}, nil, errNoFile
	}
	meta, err := s.st.GetFile(ctx, id)
	if err != nil {
		return store.File{}, nil, storeErr(err, errNoFile, "")
	}
	if _, err := s.member(ctx, actor, meta.RoomID); err != nil {
		return store.File{}, nil, errNoFile
	}
	if blob, ok := strings.CutPrefix(meta.Path, blobPrefix); ok {
		if s.cfg.Blobs == nil {
			return store.File{}, nil, fmt.Errorf("chat: file %s is kept in the store's blobs, which this server does not use", id)
		}
		data, err := s.cfg.Blobs.GetBlob(ctx, blob)
		if err != nil {
			return store.File{}, nil, fmt.Errorf("chat: read file %s: %w", id, err)
		}
		return meta, io.NopCloser(bytes.NewReader(data)), nil
	}
	f, err := os.Open(filepath.Join(s.cfg.DataDir, meta.Path))
	if err != nil {
		return store.File{}, nil, fmt.Errorf("chat: open file %s: %w", id, err)
	}
	return meta, f, nil
}
