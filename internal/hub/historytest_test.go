package hub_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/sori-dev/sori/internal/hub"
	"github.com/sori-dev/sori/internal/hub/historytest"
)

var fresh atomic.Int64

func data(i int) []byte { return []byte(fmt.Sprintf(`{"n":%d}`, i)) }

// The in-memory ring obeys the history contract, read through the hub.
func TestRingHistoryContract(t *testing.T) {
	historytest.Run(t, func(t *testing.T) historytest.Log {
		h, err := hub.New(hub.Config{Namespaces: []hub.Namespace{{Name: "mem", HistorySize: 50}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Close)
		return historytest.HubLog(h, fmt.Sprintf("mem:%d", fresh.Add(1)), "u", data)
	})
}
