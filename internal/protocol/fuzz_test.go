package protocol

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeCommands checks the decoder's contract on any input: it never
// panics, every command it returns passes Validate and re-encodes, and a bad
// command always carries a numbered error that a client can match.
// The seed corpus is in testdata/fuzz/FuzzDecodeCommands.
func FuzzDecodeCommands(f *testing.F) {
	f.Add([]byte(`{"id":1,"op":"connect","token":"x"}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		cmds, bad := DecodeCommands(frame, nil)
		for i := range cmds {
			if err := cmds[i].Validate(); err != nil {
				t.Fatalf("returned command %+v fails Validate: %v", cmds[i], err)
			}
			if _, err := json.Marshal(&cmds[i]); err != nil {
				t.Fatalf("returned command %+v does not encode: %v", cmds[i], err)
			}
		}
		if bad != nil {
			if bad.Err == nil || bad.Err.Code < 100 || bad.Err.Code > 199 || bad.Err.Message == "" {
				t.Fatalf("bad command without a numbered error: %+v", bad)
			}
			if b := EncodeError(bad.ID, bad.Err); !json.Valid(b) {
				t.Fatalf("error reply %q is not JSON", b)
			}
		}
	})
}
