package chat

import (
	"context"
	"fmt"
	"testing"

	"github.com/sori-dev/sori/internal/hub/historytest"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/sqlite"
)

// The chat Backend obeys the same history contract as the hub's in-memory
// ring (package historytest), directly and read through the hub.
func TestBackendHistoryContract(t *testing.T) {
	room := func(t *testing.T) (*env, string) {
		e := newEnv(t, sqlite.Options{})
		alice := e.user(t, "alice")
		r, err := e.svc.CreateRoom(context.Background(), alice, NewRoom{Name: "log", Kind: store.RoomPublic})
		if err != nil {
			t.Fatal(err)
		}
		return e, RoomChannel(r.ID)
	}
	msg := func(i int) []byte { return []byte(fmt.Sprintf(`{"type":"message","text":"m%d"}`, i)) }
	t.Run("backend", func(t *testing.T) {
		historytest.Run(t, func(t *testing.T) historytest.Log {
			e, ch := room(t)
			return historytest.BackendLog(e.svc.Backend(), ch, func(i int) protocol.Publication {
				return protocol.Publication{Data: msg(i), User: "alice"}
			})
		})
	})
	t.Run("through the hub", func(t *testing.T) {
		historytest.Run(t, func(t *testing.T) historytest.Log {
			e, ch := room(t)
			return historytest.HubLog(e.hub, ch, "alice", msg)
		})
	})
}
