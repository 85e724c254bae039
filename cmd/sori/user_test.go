package main

import (
	"bytes"
	"strings"
	"testing"
)

func runUser(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := user(args, strings.NewReader(stdin), &out, &errb)
	return out.String() + errb.String(), err
}

func TestUserCommands(t *testing.T) {
	data := t.TempDir()
	if out, err := runUser(t, "first-password\n", "add", "Root", "--admin", "--data", data); err != nil || !strings.Contains(out, "created user Root") {
		t.Fatalf("add: %v %s", err, out)
	}
	if _, err := runUser(t, "another-password\n", "add", "--data", data, "root"); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Fatalf("add a taken name (other case): %v", err)
	}
	if _, err := runUser(t, "short\n", "add", "bob", "--data", data); err == nil {
		t.Fatal("add with a short password succeeded")
	}
	if _, err := runUser(t, "", "add", "carol", "--data", data); err == nil {
		t.Fatal("add with no password on stdin succeeded")
	}
	if _, err := runUser(t, "whatever-pass\n", "add", "bad name", "--data", data); err == nil {
		t.Fatal("add with an invalid name succeeded")
	}
	out, err := runUser(t, "", "list", "--data", data)
	if err != nil || !strings.Contains(out, "Root") || !strings.Contains(out, "true") || strings.Contains(out, "bob") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err := runUser(t, "second-password\n", "reset-password", "ROOT", "--data", data); err != nil || !strings.Contains(out, "reset") {
		t.Fatalf("reset-password: %v %s", err, out)
	}
	if _, err := runUser(t, "second-password\n", "reset-password", "nobody", "--data", data); err == nil {
		t.Fatal("reset-password of an unknown user succeeded")
	}
	if _, err := runUser(t, "", "remove", "Root", "--data", data); err == nil {
		t.Fatal("unknown subcommand succeeded")
	}
}
