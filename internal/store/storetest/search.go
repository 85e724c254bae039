package storetest

import (
	"fmt"
	"testing"

	"github.com/sori-dev/sori/internal/store"
)

func testSearch(t *testing.T, h Harness) {
	s, ctx := open(t, h), ctxT(t)
	alice := mkUser(t, s, "alice")
	open1 := mkRoom(t, s, "open", store.RoomPublic, alice.ID)
	hidden := mkRoom(t, s, "hidden", store.RoomPrivate, alice.ID)

	first := post(t, s, open1.ID, alice.ID, "the quick brown fox")
	second := post(t, s, open1.ID, alice.ID, "a lazy brown dog")
	post(t, s, hidden.ID, alice.ID, "secret brown plans")

	search := func(rooms []int64, q string, limit int) []uint64 {
		t.Helper()
		ms := ok(s.SearchMessages(ctx, rooms, q, limit)).must(t)
		var out []uint64
		for _, m := range ms {
			if m.RoomID != open1.ID && m.RoomID != hidden.ID {
				t.Fatalf("result from room %d", m.RoomID)
			}
			out = append(out, m.Seq)
		}
		return out
	}
	if got := search([]int64{open1.ID}, "brown", 10); fmt.Sprint(got) != fmt.Sprint([]uint64{second.Seq, first.Seq}) {
		t.Fatalf("search brown in open = %v, want newest first [%d %d]", got, second.Seq, first.Seq)
	}
	if got := search([]int64{open1.ID, hidden.ID}, "brown", 10); len(got) != 3 {
		t.Fatalf("search brown in both rooms = %v", got)
	}
	if got := search([]int64{open1.ID}, "secret", 10); len(got) != 0 {
		t.Fatalf("search leaked a message from a room not asked for: %v", got)
	}
	if got := search(nil, "brown", 10); len(got) != 0 {
		t.Fatalf("search with no rooms = %v", got)
	}
	if got := search([]int64{open1.ID}, "brown", 1); len(got) != 1 || got[0] != second.Seq {
		t.Fatalf("search with limit 1 = %v", got)
	}
	if got := search([]int64{open1.ID}, "BROWN fox", 10); len(got) != 1 || got[0] != first.Seq {
		t.Fatalf("search is case-insensitive and ANDs words: %v", got)
	}
	if got := search([]int64{open1.ID}, "qui*", 10); len(got) != 1 {
		t.Fatalf("prefix search = %v", got)
	}

	// User text with FTS5 syntax in it is text, never a syntax error.
	for _, q := range []string{`"`, `brown"`, `AND`, `brown OR`, `NOT fox`, `(`, `)`, `NEAR(brown`, `-fox`, `+`, `^brown`,
		`col:brown`, `*`, `**brown`, `{brown}`, `'`, `brown AND (`, `\`, ``, `   `} {
		if _, err := s.SearchMessages(ctx, []int64{open1.ID}, q, 10); err != nil {
			t.Fatalf("search %q: %v", q, err)
		}
	}

	// Edits and deletes keep the index in step.
	ok(s.AppendEvent(ctx, open1.ID, store.Event{Kind: store.EventEdit, UserID: alice.ID, Target: first.Seq, Body: "the quick red fox"})).must(t)
	if got := search([]int64{open1.ID}, "brown", 10); len(got) != 1 || got[0] != second.Seq {
		t.Fatalf("search brown after edit = %v", got)
	}
	if got := search([]int64{open1.ID}, "red", 10); len(got) != 1 || got[0] != first.Seq {
		t.Fatalf("search red after edit = %v", got)
	}
	ms := ok(s.SearchMessages(ctx, []int64{open1.ID}, "red", 10)).must(t)
	if ms[0].Body != "the quick red fox" || ms[0].EditedAt.IsZero() {
		t.Fatalf("search result = %+v", ms[0])
	}
	ok(s.AppendEvent(ctx, open1.ID, store.Event{Kind: store.EventDelete, UserID: alice.ID, Target: second.Seq})).must(t)
	if got := search([]int64{open1.ID}, "brown", 10); len(got) != 0 {
		t.Fatalf("search finds a deleted message: %v", got)
	}
	if got := search([]int64{open1.ID}, "lazy", 10); len(got) != 0 {
		t.Fatalf("search finds a deleted message's words: %v", got)
	}
}
