package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: the side kycd writes to as its stderr,
// and the side a person's terminal reads.
func openPTY(t *testing.T) (term, reader *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("cannot unlock the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Skipf("no pseudo-terminal number: %v", err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("cannot open the pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { slave.Close() })
	return slave, master
}

// When stderr is a terminal, a person is there to read the secrets a
// first start generates: they are shown on it, and no file is written.
func TestGeneratedSecretsOnATerminal(t *testing.T) {
	t.Parallel()
	tty, reader := openPTY(t)
	seen := &syncBuffer{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := reader.Read(buf)
			seen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	db := filepath.Join(t.TempDir(), "kycd.db")
	e := &env{getenv: noEnv, stdout: &syncBuffer{}, stderr: tty}
	e.cfg.Database = "sqlite:" + db
	e.cfg.LogFormat, e.cfg.LogLevel = "json", "info"
	text := "Generated an admin token (…):\n  the-token\n"
	if err := e.showGenerated(e.logger(), "an admin token", text, "kycd tokens create"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the secret on the terminal", func() bool { return strings.Contains(seen.String(), "the-token") })
	if got := generatedSecrets(t, db); got != "" {
		t.Errorf("with stderr a terminal, the secret was also written to a file:\n%s", got)
	}
}
