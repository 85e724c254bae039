package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"

	"github.com/pion/webrtc/v4"

	"github.com/sori-dev/sori/internal/rtc/sfu"
	"github.com/sori-dev/sori/internal/rtc/signal"
)

// startSFU starts the media plane when --sfu-listen is set, or returns nil
// (calls then stay peer-to-peer and a join beyond the mesh limit fails with
// 119). A port that cannot be opened is logged, as for TURN.
func (s *Server) startSFU() signal.Media {
	if s.cfg.SFUListen == "" {
		return nil
	}
	var nat []string
	if s.cfg.SFUExternalIP != "" {
		nat = []string{s.cfg.SFUExternalIP}
	}
	m, err := sfu.New(sfu.Config{UDPAddr: s.cfg.SFUListen, TCP: s.cfg.SFUTCP, NAT1To1IPs: nat, Logger: s.log})
	if err != nil {
		s.log.Error("SFU not started; calls stay peer-to-peer", "err", err)
		return nil
	}
	if ta := m.TCPAddr(); ta != nil {
		s.log.Info("SFU listening", "udp", m.Addr().String(), "tcp", ta.String())
	} else {
		s.log.Info("SFU listening", "udp", m.Addr().String())
	}
	s.OnShutdown(func(context.Context) error { return m.Close() })
	s.mountWHIP(m)
	return sfuMedia{m}
}

// sfuPorts are the SFU's media ports (none when it is off), which the
// embedded TURN relay may reach on the server's own addresses.
func sfuPorts(m signal.Media) []uint16 {
	sm, ok := m.(sfuMedia)
	if !ok {
		return nil
	}
	if ua, ok := sm.s.Addr().(*net.UDPAddr); ok {
		return []uint16{uint16(ua.Port)}
	}
	return nil
}

// sfuMedia is signal's view of the SFU: it turns the JSON that signaling
// carries into pion's types and back.
type sfuMedia struct{ s *sfu.SFU }

func (m sfuMedia) NewRoom(_ signal.Room, speakers func([]signal.Speaker)) (signal.MediaRoom, error) {
	r, err := m.s.NewRoom(sfu.RoomConfig{OnSpeakers: func(list []sfu.Speaker) {
		out := make([]signal.Speaker, len(list))
		for i, sp := range list {
			out[i] = signal.Speaker{ID: sp.ID, Level: sp.Level}
		}
		speakers(out)
	}})
	if err != nil {
		return nil, err
	}
	return sfuRoom{r}, nil
}

type sfuRoom struct{ r *sfu.Room }

func (x sfuRoom) Join(participant string, send func(description, candidate json.RawMessage, restart bool)) error {
	_, err := x.r.Join(participant, relay(send))
	return err
}

// JoinViewer implements signal.ViewerRoom: a broadcast's viewer.
func (x sfuRoom) JoinViewer(participant string, send func(description, candidate json.RawMessage, restart bool)) error {
	_, err := x.r.JoinViewer(participant, relay(send))
	return err
}

// relay turns the SFU's signals into the JSON that signaling carries.
func relay(send func(description, candidate json.RawMessage, restart bool)) func(sfu.Signal) {
	return func(sig sfu.Signal) {
		var d, c json.RawMessage
		if sig.Description != nil {
			d, _ = json.Marshal(sig.Description) // plain data: cannot fail
		}
		if sig.Candidate != nil {
			c, _ = json.Marshal(sig.Candidate)
		}
		send(d, c, sig.Restart)
	}
}

// RestartICE implements signal.RestartRoom.
func (x sfuRoom) RestartICE(participant string) error {
	p := x.r.Peer(participant)
	if p == nil {
		return fmt.Errorf("participant %s is not on the SFU", participant)
	}
	p.RestartICE()
	return nil
}

func (x sfuRoom) Signal(participant string, description, candidate json.RawMessage) error {
	p := x.r.Peer(participant)
	if p == nil {
		return fmt.Errorf("participant %s is not on the SFU", participant)
	}
	var sig sfu.Signal
	if description != nil {
		sig.Description = &webrtc.SessionDescription{}
		if err := json.Unmarshal(description, sig.Description); err != nil {
			return fmt.Errorf("description: %w", err)
		}
	}
	if candidate != nil {
		sig.Candidate = &webrtc.ICECandidateInit{}
		if err := json.Unmarshal(candidate, sig.Candidate); err != nil {
			return fmt.Errorf("candidate: %w", err)
		}
	}
	return p.Signal(sig)
}

// SetQuality implements signal.QualityRoom.
func (x sfuRoom) SetQuality(subscriber, publisher, layer string) error {
	q, err := sfu.ParseQuality(layer)
	if err != nil {
		return err
	}
	p := x.r.Peer(subscriber)
	if p == nil {
		return fmt.Errorf("participant %s is not on the SFU", subscriber)
	}
	p.SetQuality(publisher, q)
	return nil
}

func (x sfuRoom) Leave(participant string) { x.r.Leave(participant) }

func (x sfuRoom) Close() { x.r.Close() }
