package ws

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
)

// Issue 9.10: when the session gives up on a slow consumer (4001) while the
// writer is inside a large batch, the close frame follows the write in
// progress instead of the whole batch, so a client that reads again within
// the close timeout finds it. net.Pipe has no buffer: the client reads
// exactly what the writer wrote, in order.
func TestSlowConsumerCloseOvertakesTheBatch(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	defer server.Close()
	peer := &recordingPeer{done: make(chan struct{})}
	const frames, size = 256, 4 << 10 // a 1 MiB batch
	for range frames {
		peer.queue = append(peer.queue, session.Frame{Data: bytes.Repeat([]byte("x"), size)})
	}
	opts := &Options{CloseTimeout: 10 * time.Second}
	opts.setDefaults(time.Second)
	c := &conn{nc: server, peer: peer, opts: opts}
	c.Wake()

	var h header
	scratch := make([]byte, 14)
	readFrame := func() (op byte, n int) {
		t.Helper()
		_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := readHeader(client, scratch, &h); err != nil {
			t.Fatalf("read: %v", err)
		}
		if _, err := io.CopyN(io.Discard, client, h.length); err != nil {
			t.Fatalf("read: %v", err)
		}
		return h.op, int(h.length)
	}
	// The client reads a little, then stops; the session gives up on it.
	for read := 0; read < 16<<10; {
		_, n := readFrame()
		read += n
	}
	c.Close(protocol.DisconnectSlowConsumer)
	// It reads again: the close frame comes after what was being written.
	data := 0
	for {
		op, n := readFrame()
		if op == opClose {
			break
		}
		data += n
	}
	if data > 2*maxWrite {
		t.Fatalf("%d KiB of the batch before the close frame, want at most %d KiB", data>>10, 2*maxWrite>>10)
	}
}
