// Package schema is the schema migration core shared by the SQLite and
// PostgreSQL stores: it reads a store's numbered migration files and tells
// which of them a database has not seen. Running them (in which
// transactions, under which lock) is the store's business. It must never
// import any other Sori package.
package schema

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one schema change: the file NNNN_name.sql, version NNNN. A
// released file is never edited; a change is a new file.
type Migration struct {
	Version int
	Name    string // the file name
	SQL     string
}

// Load reads the migrations in dir of fsys, ordered by version. The
// versions must be 1, 2, 3, … with no gap or repeat.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %q: name must start with a positive number and '_'", e.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %q: expected version %d", m.Name, i+1)
		}
	}
	return ms, nil
}

// Pending returns the migrations of ms after version current, the schema
// version a database records. It refuses a database written by a newer
// binary.
func Pending(ms []Migration, current int) ([]Migration, error) {
	if current > len(ms) {
		return nil, fmt.Errorf("database schema version %d is newer than this binary's %d", current, len(ms))
	}
	return ms[current:], nil
}
