package ws

// Compress deflates msg as a client would for permessage-deflate (without
// the trailing 00 00 ff ff).
func Compress(msg []byte) []byte { return compress(nil, msg, 15) }

// InflateTrackingDistance inflates a permessage-deflate message with an
// independent decoder and reports its longest back-reference.
func InflateTrackingDistance(p []byte) ([]byte, int, error) { return inflateTracking(p) }
