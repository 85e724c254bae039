// Package sfu is Sori's media plane: a Selective Forwarding Unit on pion/webrtc.
// Each participant sends its media once to the server, which forwards to each
// subscriber the simulcast layer that subscriber can take.
//
// The package knows nothing of Sori sessions, chat, the hub or signaling
// rules: it is driven through Room (join, signal, leave) by whoever owns the
// call (internal/rtc/signal, wired by internal/server). It must never import
// session, signal, chat, hub or transport packages.
//
// The pieces, from the wire inwards:
//
//   - Forwarder: per down track, the SSRC/sequence-number/timestamp rewriting
//     that lets a subscriber see one continuous stream while the SFU switches
//     simulcast layers underneath (switching only at keyframes), drops
//     padding, and maps NACKs back to the publisher's packets.
//   - keyframe detection for VP8 and H.264 payloads (codec.go).
//   - per peer connection, the SRTP buffers (rtcp.go), which pass RTCP a
//     subscriber addresses to a down track's RTX SSRC to the track's own
//     RTCP reader, and the no-op pacer that sends RTX down the media
//     stream's writer (sfu.go).
package sfu
