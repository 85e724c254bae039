package sqlite

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A database the process may not write is refused when the store opens, with
// a message that says so, instead of failing the first chat write later.
func TestOpenRefusesReadOnlyDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), DefaultFileName)
	st, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	makeReadOnly(t, path)

	st, err = Open(ctx, path, Options{})
	if err == nil {
		st.Close()
		t.Fatal("Open succeeded on a read-only database")
	}
	if !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("error %q does not say the database is not writable", err)
	}
}

// makeReadOnly makes path unwritable for this process: permission bits for a
// normal user; root ignores those, so for root the immutable attribute.
func makeReadOnly(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(path, 0o444); err != nil {
			t.Fatal(err)
		}
		return
	}
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Skipf("running as root and chattr +i is not available here (%v: %s): cannot make a file read-only", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", path).Run() })
}
