package ws

import (
	"sync"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// putBuf returns a write buffer to the pool unless it grew too large to keep.
func putBuf(bp *[]byte, b []byte) {
	if cap(b) <= 256<<10 {
		*bp = b[:0]
		bufPool.Put(bp)
	}
}

// writeLoop is the writer: it writes what the session queued until the queue
// is empty, then the close frame if a close is pending, and ends.
func (c *conn) writeLoop() {
	for {
		// Frames queued before a close are written; the close frame follows
		// them, even if the session keeps queueing meanwhile.
		closing := c.closing.Load() != nil
		frames := c.peer.Drain()
		if len(frames) > 0 {
			if err := c.writeFrames(frames); err != nil {
				c.writeFailed()
				return
			}
			if !closing {
				continue
			}
		}
		if cs := c.closing.Load(); cs != nil && !c.closeSent.Load() {
			c.sendClose(cs)
		}
		c.peer.Idle()
		c.writing.Store(false)
		// A frame or a close may have arrived between Drain and Store.
		if (c.peer.Pending() || c.closePending()) && c.writing.CompareAndSwap(false, true) {
			continue
		}
		return
	}
}

// writeFailed ends a connection whose write failed: nothing more can be
// written, so a pending close counts as done.
func (c *conn) writeFailed() {
	c.closeSocket() // the reader sees the error and cleans up
	c.writing.Store(false)
	// After the Store: a Close whose Wake found this writer still running
	// has set closing by now, and a later one starts a writer whose write
	// fails at once. Either way the reader's wait for the close frame ends.
	if cs := c.closing.Load(); cs != nil && c.closeSent.CompareAndSwap(false, true) {
		close(cs.sent)
	}
}

// maxWrite bounds one write call once a close is pending: the writer checks
// between writes whether the session gave up on the peer (slow consumer), so
// the close frame follows the frame being written instead of a whole batch.
const maxWrite = 64 << 10

// dropsQueue reports whether a close means that the session gave up on
// what it had queued (a slow consumer, 4001): the peer then needs the close
// frame, not the backlog it could not read.
func dropsQueue(d protocol.Disconnect) bool { return d.Code == protocol.DisconnectSlowConsumer.Code }

// writeFrames writes frames with as few write calls as possible: measured on
// loopback, 16 frames per write deliver about 12× more than one frame per
// write. A batch is cut into writes of about maxWrite bytes at frame
// boundaries, so that a close (a slow consumer's 4001) overtakes what is
// still unwritten.
func (c *conn) writeFrames(frames []session.Frame) error {
	bp := bufPool.Get().(*[]byte)
	var zp *[]byte // compression scratch, only for deflate connections
	err := c.writeFramesBlocking(bp, frames, &zp)
	putBuf(bp, *bp)
	if zp != nil {
		putBuf(zp, *zp)
	}
	return err
}

// writeFramesBlocking is writeFrames with the caller's buffers; *bp holds
// the last chunk on return.
func (c *conn) writeFramesBlocking(bp *[]byte, frames []session.Frame, zp **[]byte) error {
	for i := 0; i < len(frames); {
		if c.closeSent.Load() {
			break // nothing may follow a close frame (RFC 6455 §5.5.1)
		}
		b, next, n, oldest := c.encode((*bp)[:0], frames, i, zp)
		*bp = b
		if c.closing.Load() == nil {
			c.refreshWriteDeadline()
		}
		if _, err := c.nc.Write(b); err != nil {
			return err
		}
		c.peer.Wrote(n, len(b), oldest)
		i = next
		if cs := c.closing.Load(); cs != nil && dropsQueue(cs.d) {
			break // the session dropped its queue: the close frame goes next
		}
	}
	return nil
}

// encode appends frames[i:] to b until b holds maxWrite bytes or more, or
// the frames end. It returns the index of the first frame not encoded, how
// many it encoded and the oldest publication time among them.
func (c *conn) encode(b []byte, frames []session.Frame, i int, zp **[]byte) (_ []byte, next, n int, oldest int64) {
	for ; i < len(frames) && len(b) < maxWrite; i++ {
		f := &frames[i]
		switch f.Control {
		case 0:
			data, op := f.Data, byte(opText)
			if c.binary {
				// The session queues JSON; the binary codec gets the same
				// message in MessagePack, once per publication.
				op = opBinary
				if f.PublishedAt != 0 && len(f.Data) <= zcacheMax && c.opts.mc != nil {
					data = c.opts.mc.transcode(f.Data)
				} else {
					data = transcode(f.Data)
				}
			}
			if c.deflate && len(data) >= c.opts.CompressMin {
				var z []byte
				if f.PublishedAt != 0 && len(data) <= zcacheMax && c.opts.zc != nil {
					z = c.opts.zc.compress(data, c.deflateBits) // a publication: shared by its subscribers
				} else {
					if *zp == nil {
						*zp = bufPool.Get().(*[]byte)
					}
					**zp = compress((**zp)[:0], data, int(c.deflateBits))
					z = **zp
				}
				b = appendHeader(b, op, true, len(z))
				b = append(b, z...)
			} else {
				b = appendHeader(b, op, false, len(data))
				b = append(b, data...)
			}
			if f.PublishedAt != 0 && (oldest == 0 || f.PublishedAt < oldest) {
				oldest = f.PublishedAt
			}
		case session.ControlPing:
			b = appendHeader(b, opPing, false, len(f.Data))
			b = append(b, f.Data...)
		case session.ControlPong:
			b = appendHeader(b, opPong, false, len(f.Data))
			b = append(b, f.Data...)
		}
		n++
	}
	return b, i, n, oldest
}

// serveWrite is one turn of a pool goroutine for c (writepool.go), whose
// writing flag is set: it writes what is queued without blocking. It
// reports true when c must go back on the ready list (more frames were
// queued meanwhile). When it hands c to a goroutine of its own (a full
// socket, a close), that goroutine is c's writer from then on.
func (c *conn) serveWrite() (again bool) {
	if c.closing.Load() != nil {
		go c.writeLoop() // the close frame may have to wait for the peer
		return false
	}
	if frames := c.peer.Drain(); len(frames) > 0 {
		handedOff, err := c.writeFramesPooled(frames)
		if err != nil {
			c.writeFailed()
			return false
		}
		if handedOff {
			return false
		}
		if c.peer.Pending() || c.closePending() {
			return true
		}
	}
	c.peer.Idle()
	c.writing.Store(false)
	// A frame or a close may have arrived between Drain and Store.
	return (c.peer.Pending() || c.closePending()) && c.writing.CompareAndSwap(false, true)
}

// writeFramesPooled writes frames with non-blocking writes. When the socket
// cannot take a chunk whole, the rest of the chunk and of the frames is
// handed to a goroutine of c's own (finishBlocking), and it reports true.
func (c *conn) writeFramesPooled(frames []session.Frame) (handedOff bool, err error) {
	bp := bufPool.Get().(*[]byte)
	var zp *[]byte
	defer func() {
		if !handedOff {
			putBuf(bp, *bp)
			if zp != nil {
				putBuf(zp, *zp)
			}
		}
	}()
	for i := 0; i < len(frames); {
		b, next, n, oldest := c.encode((*bp)[:0], frames, i, &zp)
		*bp = b
		w, err := c.tryWrite(b)
		if err != nil {
			return false, err
		}
		if w < len(b) {
			go c.finishBlocking(bp, zp, w, n, oldest, frames[next:])
			return true, nil
		}
		c.peer.Wrote(n, len(b), oldest)
		i = next
		if c.closing.Load() != nil {
			// A close arrived: the rest goes through writeLoop's close
			// handling (a slow consumer's queue is dropped there).
			go c.finishBlocking(bp, zp, len(b), 0, 0, frames[i:])
			return true, nil
		}
	}
	return false, nil
}

// finishBlocking is c's writer after a pooled write found the socket full:
// it writes the unwritten part of the chunk in *bp (from written on) and the
// remaining frames with blocking writes under the write deadline, then stays
// c's writer until the queue is empty (writeLoop).
func (c *conn) finishBlocking(bp, zp *[]byte, written, n int, oldest int64, rest []session.Frame) {
	b := *bp
	var err error
	if written < len(b) {
		if c.closing.Load() == nil {
			c.refreshWriteDeadline()
		}
		if _, err = c.nc.Write(b[written:]); err == nil {
			c.peer.Wrote(n, len(b), oldest)
		}
	}
	if err == nil && len(rest) > 0 {
		if cs := c.closing.Load(); cs == nil || !dropsQueue(cs.d) {
			err = c.writeFramesBlocking(bp, rest, &zp)
		}
	}
	putBuf(bp, *bp)
	if zp != nil {
		putBuf(zp, *zp)
	}
	if err != nil {
		c.writeFailed()
		return
	}
	c.writeLoop()
}

// refreshWriteDeadline gives the next write at least half of WriteTimeout.
// Setting a deadline modifies a runtime timer, which cost about 5% of the
// writer's CPU when done on every write; moving it only when half of it is
// used keeps a stuck peer bounded by WriteTimeout all the same. Only the
// writer calls it (Close sets its own, shorter deadline).
func (c *conn) refreshWriteDeadline() {
	now := time.Now().UnixNano()
	if c.writeDeadline-now > int64(c.opts.WriteTimeout/2) {
		return
	}
	c.writeDeadline = now + int64(c.opts.WriteTimeout)
	_ = c.nc.SetWriteDeadline(time.Unix(0, c.writeDeadline))
}

// sendClose writes the close frame, once, and gives the peer CloseTimeout to
// answer with its own (RFC 6455 §7.1.1: the server closes TCP after the
// exchange).
func (c *conn) sendClose(cs *closeState) {
	if !c.closeSent.CompareAndSwap(false, true) {
		return
	}
	defer close(cs.sent)
	body := closeBody(cs.d.Code, cs.d.Reason)
	b := appendHeader(make([]byte, 0, 4+len(body)), opClose, false, len(body))
	b = append(b, body...)
	if _, err := c.nc.Write(b); err != nil {
		c.closeSocket()
		return
	}
	t := time.Now().Add(c.opts.CloseTimeout)
	_ = c.nc.SetReadDeadline(t)
	c.parkDeadline(t)
}
