package main

import (
	"context"
	"strings"
	"testing"

	"github.com/sori-dev/sori/internal/store/postgres"
	"github.com/sori-dev/sori/internal/store/postgres/pgtest"
)

// `sori user` with --postgres acts on the shared store, not on the data dir.
func TestUserCommandsOnPostgres(t *testing.T) {
	dsn := pgtest.Schema(t)
	data := t.TempDir()
	if out, err := runUser(t, "first-password\n", "add", "Root", "--admin", "--postgres", dsn, "--data", data); err != nil || !strings.Contains(out, "created user Root") {
		t.Fatalf("add: %v %s", err, out)
	}
	out, err := runUser(t, "", "list", "--postgres", dsn, "--data", "/nonexistent") // no data dir needed
	if err != nil || !strings.Contains(out, "Root") {
		t.Fatalf("list from another data dir: %v\n%s", err, out)
	}
	if out, _ := runUser(t, "", "list", "--data", data); strings.Contains(out, "Root") {
		t.Fatalf("the user went to the data dir's SQLite store:\n%s", out)
	}
	st, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if u, err := st.GetUserByName(context.Background(), "root"); err != nil || !u.IsAdmin {
		t.Fatalf("user in PostgreSQL = %+v, %v", u, err)
	}
	if out, err := runUser(t, "", "disable", "ROOT", "--postgres", dsn); err != nil || !strings.Contains(out, "disabled Root") {
		t.Fatalf("disable: %v %s", err, out)
	}
	if u, err := st.GetUserByName(context.Background(), "root"); err != nil || !u.Disabled || u.CredentialsChangedAt.IsZero() {
		t.Fatalf("user in PostgreSQL after disable = %+v, %v", u, err)
	}
	if out, err := runUser(t, "", "enable", "root", "--postgres", dsn); err != nil || !strings.Contains(out, "enabled Root") {
		t.Fatalf("enable: %v %s", err, out)
	}
	if u, err := st.GetUserByName(context.Background(), "root"); err != nil || u.Disabled {
		t.Fatalf("user in PostgreSQL after enable = %+v, %v", u, err)
	}
}
