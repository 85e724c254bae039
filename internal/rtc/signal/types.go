package signal

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Mode is how a call carries media. Clients branch on it, so that a room can
// move to a server-side forwarder without a new client API.
type Mode string

// Modes of a call.
const (
	// ModeMesh: every participant has one peer connection to every other
	// participant, and signals go participant to participant.
	ModeMesh Mode = "mesh"
)

// ICEServer is one entry of an RTCConfiguration.iceServers list.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// State is what a participant shows the others about its media.
type State struct {
	Muted  bool `json:"muted"`
	Camera bool `json:"camera"`
	Screen bool `json:"screen"`
}

// Participant describes one participant of a call as seen by the receiver of
// the description. Polite is the receiver's role towards this participant in
// perfect negotiation: the participant that joined later is impolite and makes
// the first offer; the earlier one is polite.
type Participant struct {
	ID     string `json:"id"`
	User   string `json:"user"`
	Polite bool   `json:"polite"`
	State  State  `json:"state"`
	// Role is RoleHost or RoleViewer in a broadcast call, absent otherwise.
	Role string `json:"role,omitempty"`
}

// Room is a call room name. In JSON it is a string, and a number is accepted
// too, so that chat room ids can be passed as they are.
type Room string

// UnmarshalJSON implements json.Unmarshaler.
func (r *Room) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*r = Room(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("room must be a string or a number: %w", err)
	}
	if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
		return fmt.Errorf("room number %s is not an integer", n)
	}
	*r = Room(n.String())
	return nil
}

// validRoom accepts 1-64 bytes of letters, digits, '_', '-' and '.'.
func validRoom(r Room) bool {
	if len(r) == 0 || len(r) > 64 {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

// JoinRequest is the data of call.join.
type JoinRequest struct {
	Room  Room   `json:"room"`
	State *State `json:"state,omitempty"`
	// Replaces is the joiner's participant id from an earlier join, whose
	// connection was lost: see Service.Join.
	Replaces string `json:"replaces,omitempty"`
	// Broadcast starts the room's call as a broadcast (only hosts publish;
	// see Service.Join). Ignored when the room's broadcast is running.
	Broadcast bool `json:"broadcast,omitempty"`
}

// JoinResult is the result of call.join.
type JoinResult struct {
	Room Room `json:"room"`
	// Participant is the joiner's own participant id.
	Participant string `json:"participant"`
	// Mode says how media flows: "mesh" or "sfu".
	Mode Mode `json:"mode"`
	// Limit is the most participants the call takes in its current mode
	// (the mesh limit, or the SFU room limit).
	Limit int `json:"limit"`
	// Participants are the others already in the call, in join order.
	Participants []Participant `json:"participants"`
	// ICEServers is the RTCConfiguration.iceServers list for this user.
	ICEServers []ICEServer `json:"ice_servers"`
	// Broadcast: the call is a broadcast; Role is then the joiner's,
	// RoleHost or RoleViewer.
	Broadcast bool   `json:"broadcast,omitempty"`
	Role      string `json:"role,omitempty"`
}

// Roles in a broadcast call.
const (
	RoleHost   = "host"   // publishes, sees every participant
	RoleViewer = "viewer" // receives only, sees the hosts
)

// LeaveRequest is the data of call.leave.
type LeaveRequest struct {
	Room Room `json:"room"`
}

// SignalRequest is the data of call.signal: a session description, an ICE
// candidate, an ICE-restart flag, or several of them, for one participant.
// Description and Candidate are passed through as the client wrote them
// (RTCSessionDescriptionInit and RTCIceCandidateInit) after a shape check.
type SignalRequest struct {
	Room        Room            `json:"room"`
	To          string          `json:"to"`
	Description json.RawMessage `json:"description,omitempty"`
	Candidate   json.RawMessage `json:"candidate,omitempty"`
	Restart     bool            `json:"restart,omitempty"`
}

// StateRequest is the data of call.state; absent fields keep their value.
type StateRequest struct {
	Room   Room  `json:"room"`
	Muted  *bool `json:"muted,omitempty"`
	Camera *bool `json:"camera,omitempty"`
	Screen *bool `json:"screen,omitempty"`
}

// QualityRequest is the data of call.quality: the most the caller receives
// of Peer's camera video in an SFU call.
type QualityRequest struct {
	Room Room   `json:"room"`
	Peer string `json:"peer"`
	// Layer is one of Qualities.
	Layer string `json:"layer"`
}

// Qualities are the values of QualityRequest.Layer: "auto" lets the
// caller's bandwidth estimate decide, "high", "mid" and "low" cap the
// simulcast layer (the estimate still decides below the cap), "off" pauses
// the video (audio is untouched).
var Qualities = []string{"auto", "high", "mid", "low", "off"}

// Events of the "call" push.
const (
	EventJoined = "joined"
	EventLeft   = "left"
	EventState  = "state"
	EventSignal = "signal"
)

// Push is the frame {"push":"call",…} sent to participants.
type Push struct {
	Push        string          `json:"push"`
	Room        Room            `json:"room"`
	Event       string          `json:"event"`
	Participant *Participant    `json:"participant,omitempty"`
	Reason      string          `json:"reason,omitempty"`
	From        string          `json:"from,omitempty"`
	Description json.RawMessage `json:"description,omitempty"`
	Candidate   json.RawMessage `json:"candidate,omitempty"`
	Restart     bool            `json:"restart,omitempty"`
	Mode        Mode            `json:"mode,omitempty"`
	Speakers    *[]Speaker      `json:"speakers,omitempty"`
}

// Reasons a participant left, in the "left" push.
const (
	ReasonLeft         = "left"         // call.leave
	ReasonDisconnected = "disconnected" // the connection went away
	ReasonReplaced     = "replaced"     // a join with replaces by the same user
	ReasonKicked       = "kicked"       // removed from the chat room
	ReasonLeftRoom     = "left room"    // left the chat room
)
