package server

import (
	"context"
	"time"

	"github.com/sori-dev/sori/internal/chat"
	"github.com/sori-dev/sori/internal/rtc/signal"
)

// callNotifier publishes the call state of rooms for their members outside
// the call (docs/calls.md, "Call state outside the call"): on the room's live
// channel, and as a ring on the other user's personal channel when a call
// starts in a direct room. Call rooms that are no chat room ids are skipped.
type callNotifier struct {
	chat *chat.Service
	s    *Server
}

// callNotifier returns the Notifier of the call signaling; nil without chat.
func (s *Server) callNotifier() signal.Notifier {
	if s.chat == nil {
		return nil
	}
	return callNotifier{chat: s.chat, s: s}
}

// notifyTimeout bounds one publication: the notifier delivers in order, so
// a stuck store must not hold back the call state of every other room.
const notifyTimeout = 5 * time.Second

func (n callNotifier) CallChanged(room signal.Room, st signal.CallState) {
	id, ok := chat.ParseID(string(room))
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
	defer cancel()
	n.chat.CallSignal(ctx, id, st)
}

func (n callNotifier) CallStarted(room signal.Room, by string) {
	id, ok := chat.ParseID(string(room))
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
	defer cancel()
	if err := n.chat.RingDirect(ctx, id, by); err != nil {
		n.s.log.Warn("call ring not sent", "room", string(room), "err", err)
	}
}
