package sfu

import "testing"

func TestKeyframeDetection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		codec Codec
		p     []byte
		want  bool
	}{
		{"audio always", CodecAudio, []byte{0x01}, true},
		{"vp8 no X, key", CodecVP8, []byte{0x10, 0x00}, true},
		{"vp8 no X, delta", CodecVP8, []byte{0x10, 0x01}, false},
		{"vp8 not start of partition", CodecVP8, []byte{0x00, 0x00}, false},
		{"vp8 start of partition 1", CodecVP8, []byte{0x11, 0x00}, false},
		{"vp8 7-bit picture id, key", CodecVP8, []byte{0x90, 0x80, 0x12, 0x00}, true},
		{"vp8 15-bit picture id, key", CodecVP8, []byte{0x90, 0x80, 0x81, 0x23, 0x00}, true},
		{"vp8 15-bit picture id, delta", CodecVP8, []byte{0x90, 0x80, 0x81, 0x23, 0x01}, false},
		{"vp8 I+L+T, key", CodecVP8, []byte{0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 0x9c}, true},
		{"vp8 I+L+K, delta", CodecVP8, []byte{0x90, 0xd0, 0x05, 0x07, 0x20, 0x9d}, false},
		{"vp8 truncated after X", CodecVP8, []byte{0x90}, false},
		{"vp8 truncated in picture id", CodecVP8, []byte{0x90, 0x80}, false},
		{"vp8 no frame header", CodecVP8, []byte{0x90, 0x80, 0x81, 0x23}, false},
		{"vp8 empty", CodecVP8, nil, false},
		{"h264 IDR", CodecH264, []byte{0x65, 0x88}, true},
		{"h264 SPS", CodecH264, []byte{0x67, 0x42}, true},
		{"h264 non-IDR slice", CodecH264, []byte{0x41, 0x9a}, false},
		{"h264 PPS alone", CodecH264, []byte{0x68, 0xce}, false},
		{"h264 STAP-A SPS+PPS", CodecH264, []byte{0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}, true},
		{"h264 STAP-A PPS+IDR", CodecH264, []byte{0x78, 0x00, 0x02, 0x68, 0xce, 0x00, 0x02, 0x65, 0x88}, true},
		{"h264 STAP-A two slices", CodecH264, []byte{0x78, 0x00, 0x02, 0x41, 0x9a, 0x00, 0x02, 0x41, 0x9b}, false},
		{"h264 STAP-A bad size", CodecH264, []byte{0x78, 0x00, 0x09, 0x67}, false},
		{"h264 FU-A start of IDR", CodecH264, []byte{0x7c, 0x85, 0x88}, true},
		{"h264 FU-A middle of IDR", CodecH264, []byte{0x7c, 0x05, 0x88}, false},
		{"h264 FU-A start of slice", CodecH264, []byte{0x7c, 0x81, 0x9a}, false},
		{"h264 FU-A truncated", CodecH264, []byte{0x7c}, false},
		{"h264 empty", CodecH264, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.codec.IsKeyframeStart(tc.p); got != tc.want {
				t.Fatalf("IsKeyframeStart(% x) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}
