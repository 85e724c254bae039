package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sori-dev/sori/internal/accounts"
	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/store/postgres/pgtest"
)

// The cap on usable invites holds for the cluster, not per node: with
// 5 slots left, 12 admins' requests released at once on two nodes get
// exactly 5 invites; the rest are refused with 409, and the database
// holds MaxInvites usable invites. (Each node alone serialized its own
// requests before, so two nodes could pass the cap together.)
func TestInviteCapAcrossNodes(t *testing.T) {
	dsn := pgtest.Schema(t)
	shared := func(c *config.Config) { c.Postgres = dsn }
	a, b := startServer(t, shared), startServer(t, shared)
	root := signup(t, a.URL, "root")
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	// What `sori user add --admin` sets; and all but 5 of the usable
	// invites, stored directly (200 requests would only make the test
	// slow).
	if _, err := db.Exec(ctx, `UPDATE users SET is_admin = true WHERE username = 'root'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO invites (id, created_by, created_at, expires_at, uses, used)
		SELECT 'filler' || i, u.id, now(), now() + interval '1 hour', 1, 0
		FROM generate_series(1, $1::int) i, users u WHERE u.username = 'root'`, accounts.MaxInvites-5); err != nil {
		t.Fatal(err)
	}
	nodes := []*testServer{a, b}
	count := raceOnNodes(t, nodes, root.token, "/api/v1/admin/invites", "/api/v1/admin/invites", `{"ttl_seconds":3600}`, 12)
	var stored int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM invites WHERE used < uses AND expires_at > now()`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if count[http.StatusCreated] != 5 || count[http.StatusConflict] != 7 || stored != accounts.MaxInvites {
		t.Fatalf("12 requests on two nodes for the last 5 invites: statuses %v, %d usable invites stored; want 5×201, 7×409 and %d",
			count, stored, accounts.MaxInvites)
	}
	// Both nodes refuse the next one.
	for _, ts := range nodes {
		out := root.call(t, ts, "POST", "/api/v1/admin/invites", map[string]any{}, http.StatusConflict)
		if !strings.Contains(fmt.Sprint(out), fmt.Sprint(accounts.MaxInvites)) {
			t.Fatalf("refusal without the cap in its message: %v", out)
		}
	}
}

// raceOnNodes warms each node's HTTP and database connections with GETs of
// warmPath (so that the requests below overlap instead of each waiting for
// a connection), then releases n POSTs of body to postPath at once, spread
// over nodes, and counts their statuses.
func raceOnNodes(t *testing.T, nodes []*testServer, token, warmPath, postPath, body string, n int) map[int]int {
	t.Helper()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { restCall(t, nodes[i%len(nodes)].URL, token, "GET", warmPath, nil, http.StatusOK) })
	}
	wg.Wait()
	codes := make([]int, n)
	start := make(chan struct{})
	for i := range codes {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest("POST", nodes[i%len(nodes)].URL+postPath, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	return count
}
