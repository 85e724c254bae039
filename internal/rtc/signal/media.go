package signal

import (
	"encoding/json"
	"time"
)

// Media is the server-side forwarder (the SFU) as signaling sees it. The
// server wires an implementation over internal/rtc/sfu; signal never
// imports it. A nil Media keeps every call a mesh.
type Media interface {
	// NewRoom starts the media of one call. speakers receives the active
	// speakers, loudest first, when they change; it must not block.
	NewRoom(room Room, speakers func([]Speaker)) (MediaRoom, error)
}

// MediaRoom is one call's media on the SFU.
//
// Join, Leave and Close are called with the Service's lock held and must
// not call back into the Service; Signal is called without it.
type MediaRoom interface {
	// Join adds a participant; send receives the SFU's descriptions and
	// candidates for it (JSON RTCSessionDescriptionInit and
	// RTCIceCandidateInit; either may be nil), restart marking an
	// ICE-restart offer. send must not block.
	Join(participant string, send func(description, candidate json.RawMessage, restart bool)) error
	// Signal passes a participant's description and/or candidate on.
	Signal(participant string, description, candidate json.RawMessage) error
	// Leave removes a participant; unknown ones are ignored.
	Leave(participant string)
	// Close ends the room's media.
	Close()
}

// ViewerRoom is a MediaRoom that takes receive-only participants, the
// viewers of a broadcast call.
type ViewerRoom interface {
	// JoinViewer is Join for a participant whose media is never forwarded.
	JoinViewer(participant string, send func(description, candidate json.RawMessage, restart bool)) error
}

// RestartRoom is a MediaRoom that restarts ICE when a participant asks
// (a bare "restart" signal to "sfu"). It is called without the Service's
// lock.
type RestartRoom interface {
	// RestartICE makes the SFU send participant an ICE-restart offer.
	RestartICE(participant string) error
}

// QualityRoom is a MediaRoom that takes a subscriber's quality choice
// (call.quality). It is called without the Service's lock.
type QualityRoom interface {
	// SetQuality caps what subscriber receives of publisher's camera
	// video; layer is one of Qualities. It fails for a participant not on
	// the SFU.
	SetQuality(subscriber, publisher, layer string) error
}

// Speaker is one entry of the "speakers" push.
type Speaker struct {
	ID    string  `json:"id"`
	Level float64 `json:"level"`
}

// ModeSFU: every participant has one peer connection, to the
// pseudo-participant "sfu", which forwards the others' tracks.
const ModeSFU Mode = "sfu"

// SFUPeer is the participant id of the SFU in call.signal and signal pushes.
const SFUPeer = "sfu"

// Defaults of the SFU side of calls.
const (
	DefaultSFULimit = 50
	// DefaultBroadcastLimit is the most participants (hosts and viewers)
	// of a broadcast call.
	DefaultBroadcastLimit = 500
	// DefaultMeshReturn is how long a call on the SFU must stay below the
	// mesh limit before it returns to mesh (hysteresis: a call hovering
	// at the limit does not flap).
	DefaultMeshReturn = 30 * time.Second
)

// Timer is a stoppable timer (time.Timer's Stop).
type Timer interface{ Stop() bool }

func realAfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Events of the "call" push added by the SFU.
const (
	EventMode     = "mode"
	EventSpeakers = "speakers"
)
