package sfu

import (
	"fmt"
	"time"
)

// Quality is a subscriber's choice of how much of one publisher's camera
// video it receives (call.quality). It caps the simulcast layer; below the
// cap the subscriber's bandwidth estimate still decides, so a congested
// link still falls back. Screen shares and audio are never capped.
type Quality int

// Qualities, from "let the estimate decide" to "no video".
const (
	QualityAuto Quality = iota // no cap: the bandwidth estimate decides
	QualityHigh                // at most the top layer (f)
	QualityMid                 // at most the middle layer (h)
	QualityLow                 // the low layer (q) only
	QualityOff                 // no video at all: the down track is paused
)

var qualityNames = [...]string{"auto", "high", "mid", "low", "off"}

// ParseQuality reads a quality by its protocol name: auto, high, mid, low
// or off.
func ParseQuality(s string) (Quality, error) {
	for i, n := range qualityNames {
		if s == n {
			return Quality(i), nil
		}
	}
	return 0, fmt.Errorf("sfu: quality %q is not one of auto, high, mid, low, off", s)
}

// String is the protocol name of q.
func (q Quality) String() string {
	if q < 0 || int(q) >= len(qualityNames) {
		return fmt.Sprintf("Quality(%d)", int(q))
	}
	return qualityNames[q]
}

// maxLayer is the highest layer q allows; -1 for off.
func (q Quality) maxLayer() int {
	switch q {
	case QualityMid:
		return 1
	case QualityLow:
		return 0
	case QualityOff:
		return -1
	}
	return maxLayers - 1
}

// SetQuality caps the layer p receives of publisher's camera tracks (see
// Quality). It takes effect at once: a lower cap switches at the next
// keyframe of the lower layer, QualityOff stops the video at once, and a
// higher cap (or auto) climbs without waiting out UpgradeHold as far as the
// estimate allows (the subscriber asked for it). The choice outlives the
// publisher's tracks: a track it publishes later is capped too.
func (p *Peer) SetQuality(publisher string, q Quality) {
	p.mu.Lock()
	if p.caps == nil {
		p.caps = map[string]Quality{}
	}
	if q == QualityAuto {
		delete(p.caps, publisher)
	} else {
		p.caps[publisher] = q
	}
	for u, d := range p.downs {
		if u.pub.id == publisher {
			d.chosen = true
		}
	}
	p.mu.Unlock()
	p.allocate(time.Now())
}

// Quality is p's choice for publisher's camera video.
func (p *Peer) Quality(publisher string) Quality {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.caps[publisher]
}
