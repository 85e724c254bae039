package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sori-dev/sori/internal/accounts"
	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/store/postgres/pgtest"
)

// The cap on a user's API tokens holds for the cluster, not per node:
// with 5 left, 12 requests released at once on two nodes sharing the
// database get exactly 5 tokens; the rest are refused with 409 (error
// 118), and the user holds MaxAPITokens. (Each node serialized only its
// own requests before, so two nodes could pass the cap together.)
func TestAPITokenCapAcrossNodes(t *testing.T) {
	dsn := pgtest.Schema(t)
	shared := func(c *config.Config) { c.Postgres = dsn }
	a, b := startServer(t, shared), startServer(t, shared)
	kim := signup(t, a.URL, "kim") // an API token: the first of kim's
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	// All but 5, stored directly (45 requests would only make the test
	// slow); and an expired one, which does not count.
	if _, err := db.Exec(ctx, `INSERT INTO sessions (id, kind, user_id, label, created_at, expires_at)
		SELECT 'filler' || i, 'api', u.id, 'filler', now(), NULL
		FROM generate_series(1, $1::int) i, users u WHERE u.username = 'kim'
		UNION ALL SELECT 'expired', 'api', u.id, 'old', now() - interval '2 hours', now() - interval '1 hour'
		FROM users u WHERE u.username = 'kim'`, accounts.MaxAPITokens-6); err != nil {
		t.Fatal(err)
	}
	nodes := []*testServer{a, b}
	count := raceOnNodes(t, nodes, kim.token, "/api/v1/auth/tokens", "/api/v1/auth/tokens", `{"label":"race"}`, 12)
	var stored int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE u.username = 'kim' AND s.kind = 'api' AND (s.expires_at IS NULL OR s.expires_at > now())`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if count[http.StatusCreated] != 5 || count[http.StatusConflict] != 7 || stored != accounts.MaxAPITokens {
		t.Fatalf("12 requests on two nodes for kim's last 5 API tokens: statuses %v, %d unexpired tokens stored; want 5×201, 7×409 and %d",
			count, stored, accounts.MaxAPITokens)
	}
	// Both nodes refuse the next one, with the numbered error.
	for _, ts := range nodes {
		out := restCall(t, ts.URL, kim.token, "POST", "/api/v1/auth/tokens", map[string]any{"label": "one more"}, http.StatusConflict)
		if e, _ := out["error"].(map[string]any); e == nil || e["code"] != float64(118) {
			t.Fatalf("refusal over the cap: %v, want error 118", out)
		}
	}
}
