package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sori-dev/sori/internal/protocol"
)

// lossyProxy is a TCP proxy in front of a NATS server that loses what a
// NATS server's shutdown loses: once armed, from the first client chunk
// holding a pattern on, it drops either that chunk and all the client sends
// after it (a request never read), or all the server answers after it (a
// request handled whose reply never left). cut then closes every proxied
// connection and disarms, so the client's reconnection passes intact.
type lossyProxy struct {
	ln net.Listener

	mu      sync.Mutex
	conns   []net.Conn
	pattern []byte // nil: disarmed
	replies bool   // drop the server's answers (else the client's request)
	lost    chan struct{}
}

func newLossyProxy(t *testing.T, target string) *lossyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{ln: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			var dropUp, dropDown atomic.Bool
			go p.pump(c, s, &dropUp, &dropDown, true)
			go p.pump(s, c, &dropDown, nil, false)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		p.cut()
	})
	return p
}

func (p *lossyProxy) url() string { return "nats://" + p.ln.Addr().String() }

// arm makes the proxy lose from the next client chunk holding pattern on;
// the returned channel is closed once it has.
func (p *lossyProxy) arm(pattern string, replies bool) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pattern, p.replies, p.lost = []byte(pattern), replies, make(chan struct{})
	return p.lost
}

// cut closes every proxied connection and disarms the proxy.
func (p *lossyProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns, p.pattern = nil, nil
}

// pump copies from → to, dropping while drop is set. On the client's side
// (up) it also looks for the armed pattern, and sets drop (the request) or
// other (the server's answers) when it sees it.
func (p *lossyProxy) pump(from, to net.Conn, drop, other *atomic.Bool, up bool) {
	defer to.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			if up {
				p.mu.Lock()
				if p.pattern != nil && bytes.Contains(buf[:n], p.pattern) {
					if p.replies {
						other.Store(true)
					} else {
						drop.Store(true)
					}
					p.pattern = nil
					close(p.lost)
				}
				p.mu.Unlock()
			}
			if !drop.Load() {
				if _, werr := to.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return // closed by cut, or by either side
		}
	}
}

// A reply lost with the connection (what a NATS restart does to requests
// JetStream took in) must not leave an append waiting for ever: it holds the
// channel's tip lock, so every later publish of the channel on that node
// would wait behind it. The hub calls Append with no deadline (as here).
// Whether the lost message is the append's read of the channel's last
// message or its publish's acknowledgement, Append returns, and the log
// stays whole: the next append takes the next offset after what is stored,
// in the same epoch.
func TestJSLogAppendSurvivesALostReply(t *testing.T) {
	srv := startJetStream(t)
	p := newLossyProxy(t, srv.Addr().String())
	reconnected := make(chan struct{}, 4)
	// Only through the proxy, reconnections too.
	nc, err := nats.Connect(p.url(), nats.IgnoreDiscoveredServers(), nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) {
			select {
			case reconnected <- struct{}{}:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	octx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := OpenJSLog(octx, nc, "a", 1, []Stream{{Namespace: "app", Size: 50}})
	if err != nil {
		t.Fatal(err)
	}
	// Short, so that the case is quick; the wait below is only a bound for
	// a broken build, where the append never returns.
	l.timeout = 300 * time.Millisecond

	for _, c := range []struct {
		name, channel, pattern string
		replies                bool
	}{
		{"the read of the last message is lost", "app:read", "$JS.API.DIRECT.GET.", false},
		{"the publish's acknowledgement is lost", "app:ack", "HPUB " + streamPrefix, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch := c.channel
			lost := p.arm(c.pattern, c.replies)
			type result struct {
				pub   protocol.Publication
				epoch string
				err   error
			}
			done := make(chan result, 1)
			go func() {
				pub, ep, err := l.Append(context.Background(), ch, protocol.Publication{Data: json.RawMessage(`"first"`)})
				done <- result{pub, ep, err}
			}()
			<-lost
			p.cut() // the server goes; the client reconnects at once
			<-reconnected
			var first result
			select {
			case first = <-done:
			case <-time.After(time.Minute):
				t.Fatal("Append never returned after its reply was lost: it waits for ever, holding the channel's tip")
			}
			t.Logf("the append whose reply was lost returned %d/%s, %v", first.pub.Offset, first.epoch, first.err)
			if !c.replies && first.err == nil {
				t.Fatal("the append whose read never reached the server reported success")
			}
			if first.err != nil && !errors.Is(first.err, protocol.ErrStoreDown) {
				t.Fatalf("the failed append's error %v does not tell the client to try again (122)", first.err)
			}
			next, ep, err := l.Append(context.Background(), ch, protocol.Publication{Data: json.RawMessage(`"next"`)})
			if err != nil {
				t.Fatalf("the next append: %v", err)
			}
			pubs, top, err := l.Last(context.Background(), ch, 10)
			if err != nil {
				t.Fatal(err)
			}
			if top.Epoch != ep || top.Offset != next.Offset || len(pubs) != int(next.Offset) {
				t.Fatalf("after the next append (%d/%s) the log holds %d publications, top %+v", next.Offset, ep, len(pubs), top)
			}
			for i, pub := range pubs {
				if pub.Offset != uint64(i+1) {
					t.Fatalf("offsets not contiguous from 1: %d at %d", pub.Offset, i)
				}
			}
			if string(pubs[len(pubs)-1].Data) != `"next"` {
				t.Fatalf("the top holds %s, want the next append's", pubs[len(pubs)-1].Data)
			}
			if first.err == nil && (first.epoch != ep || first.pub.Offset != 1 || string(pubs[0].Data) != `"first"`) {
				t.Fatalf("the first append reported %d/%s but the log holds %s at 1 in epoch %s", first.pub.Offset, first.epoch, pubs[0].Data, ep)
			}
			if c.replies && len(pubs) == 1 {
				t.Log("the server dropped the publish with its connection: nothing of it stored")
			}
		})
	}
}
