package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"

	"github.com/sori-dev/sori/internal/accounts"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/server"
)

const userUsage = `Usage:
  sori user add NAME [--admin]     create a user; the password is read from a prompt,
                                   or as one line from stdin when it is not a terminal
  sori user list                   list users
  sori user reset-password NAME    set a new password (same input rules); ends the
                                   user's sessions and API tokens
  sori user disable NAME           disable the account: revokes every credential
                                   (sessions, API tokens, connection tokens), closes
                                   the user's connections and refuses every login
  sori user enable NAME            enable it again (the user logs in afresh)

All take --data DIR (the same data dir as "sori serve"; default ./sori-data), or
--postgres DSN for a cluster's shared store, and work while the server runs.
`

// user runs the account administration commands on the data dir's store.
func user(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, userUsage)
		return errUsage
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, userUsage)
		return flag.ErrHelp
	}
	want := map[string]int{"add": 1, "list": 0, "reset-password": 1, "disable": 1, "enable": 1}
	n, ok := want[sub]
	if !ok {
		fmt.Fprint(stderr, userUsage)
		return usagef("user: unknown command %q", sub)
	}
	cfg, fs, err := loadConfig("user "+sub, rest, stderr, "data", "postgres")
	if err != nil {
		return err
	}
	admin := new(bool)
	if sub == "add" {
		fs.BoolVar(admin, "admin", false, "make the user a server admin")
	}
	fs.Usage = func() {
		fmt.Fprint(stderr, userUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	names, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if len(names) != n {
		fmt.Fprint(stderr, userUsage)
		return usagef("user %s: want %d name argument(s), got %d", sub, n, len(names))
	}

	ctx := context.Background()
	if cfg.Postgres == "" {
		if err := existingDataDir(cfg.DataDir); err != nil {
			return fmt.Errorf("user: %w", err)
		}
	}
	st, err := server.OpenStore(ctx, *cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	hasher, err := accounts.NewHasher(accounts.DefaultParams, 1)
	if err != nil {
		return err
	}
	acc, err := accounts.New(accounts.Config{Store: st, Hasher: hasher})
	if err != nil {
		return err
	}

	switch sub {
	case "list":
		users, err := st.ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSERNAME\tADMIN\tPASSWORD\tCREATED")
		for _, u := range users {
			pw := "yes"
			if u.PasswordHash == "" {
				pw = "no (token identity)"
			}
			fmt.Fprintf(tw, "%d\t%s\t%v\t%s\t%s\n", u.ID, u.Username, u.IsAdmin, pw, u.CreatedAt.Format("2006-01-02 15:04"))
		}
		return tw.Flush()
	case "add":
		if perr := accounts.ValidateUsername(names[0]); perr != nil {
			return describe(perr)
		}
		pw, err := readPassword(stdin, stderr)
		if err != nil {
			return err
		}
		u, err := acc.CreateUser(ctx, names[0], pw, *admin)
		if err != nil {
			return describe(err)
		}
		fmt.Fprintf(stdout, "created user %s (id %d, admin %v)\n", u.Username, u.ID, u.IsAdmin)
		return nil
	case "disable", "enable":
		// What the admin API does (POST /api/v1/admin/users/{name}/disable):
		// the store revokes everything in one transaction, and running
		// servers close the user's connections at their next credential
		// poll (within 2 s), as after reset-password.
		u, err := st.GetUserByName(ctx, names[0])
		if err != nil {
			return fmt.Errorf("user %s: %w", names[0], err)
		}
		if u, err = acc.SetDisabled(ctx, u.ID, sub == "disable"); err != nil {
			return err
		}
		if u.Disabled {
			fmt.Fprintf(stdout, "disabled %s; their sessions and tokens are revoked\n", u.Username)
		} else {
			fmt.Fprintf(stdout, "enabled %s; they can log in again\n", u.Username)
		}
		return nil
	default: // reset-password
		u, err := st.GetUserByName(ctx, names[0])
		if err != nil {
			return fmt.Errorf("user %s: %w", names[0], err)
		}
		pw, err := readPassword(stdin, stderr)
		if err != nil {
			return err
		}
		if err := acc.SetPassword(ctx, u.ID, pw); err != nil {
			return describe(err)
		}
		fmt.Fprintf(stdout, "password of %s reset; their sessions and tokens are revoked\n", u.Username)
		return nil
	}
}

// describe shows a numbered account error (a validation failure, a taken
// name) as its plain message.
func describe(err error) error {
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return errors.New(perr.Message)
	}
	return err
}

// parseInterspersed parses flags that may come before or after the
// positional arguments ("add alice --admin" and "add --admin alice").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// readPassword reads the new password. From a terminal it prompts twice
// with echo turned off (through stty, when available; golang.org/x/term is
// not a dependency of this module); otherwise it reads one line from stdin,
// so that scripts can pipe it: echo "$PW" | sori user add alice.
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	f, isFile := stdin.(*os.File)
	if !isFile || !isTerminal(f) {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && (err != io.EOF || line == "") {
			return "", errors.New("read password from stdin: no line given")
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	restore := noEcho(f)
	defer restore()
	in := bufio.NewReader(f)
	fmt.Fprint(stderr, "Password: ")
	pw, err := in.ReadString('\n')
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprint(stderr, "Again: ")
	again, err := in.ReadString('\n')
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if pw != again {
		return "", errors.New("the passwords differ")
	}
	return strings.TrimRight(pw, "\r\n"), nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// noEcho turns terminal echo off and returns how to turn it back on. When
// stty is missing the password is echoed; the prompt still works.
func noEcho(tty *os.File) func() {
	off := exec.Command("stty", "-echo")
	off.Stdin = tty
	if off.Run() != nil {
		return func() {}
	}
	return func() {
		on := exec.Command("stty", "echo")
		on.Stdin = tty
		_ = on.Run()
	}
}
