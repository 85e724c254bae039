package server

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/sori-dev/sori/internal/chat"
	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/postgres"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

// OpenStore opens the chat store cfg names: the shared PostgreSQL database
// when cfg.Postgres is set (cluster mode), else the SQLite file in the data
// dir. `sori serve` and `sori user` both use it, so the CLI always acts on
// the store the server serves.
func OpenStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	if cfg.Postgres != "" {
		st, err := postgres.Open(ctx, cfg.Postgres, postgres.Options{})
		if err != nil {
			return nil, fmt.Errorf("server: open chat store: %w", err)
		}
		return st, nil
	}
	st, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, sqlite.DefaultFileName), sqlite.Options{})
	if err != nil {
		return nil, fmt.Errorf("server: open chat store: %w", err)
	}
	return st, nil
}

// blobsOf returns where the chat keeps uploaded bytes: in the PostgreSQL
// store when that is the store, so that every node serves every file; nil
// (the data dir) otherwise.
func blobsOf(st store.Store) chat.Blobs {
	if pg, ok := st.(*postgres.Store); ok {
		return pg
	}
	return nil
}

// memberCacheSize is the chat service's membership cache bound: off in
// cluster mode, where another node can change a membership without this
// node hearing of it (until a cluster-wide invalidation exists, every
// per-message check reads the shared store).
func memberCacheSize(cfg config.Config) int {
	if cfg.ClusterMode() {
		return -1
	}
	return 0
}
