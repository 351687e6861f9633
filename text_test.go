package kycd_test

import (
	"testing"

	"github.com/kycd/kycd"
)

// Control characters are shown as escapes, on one line; ordinary text,
// a backslash and letters of any script, is shown as it is.
func TestEscaped(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, line, block string }{
		{"plain text, é, 日本, \\x1b", "plain text, é, 日本, \\x1b", "plain text, é, 日本, \\x1b"},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\x07`, `\x1b]0;pwned\x07`},
		{"a\r\nb\tc", `a\x0d\x0ab\x09c`, "a\\x0d\nb\tc"},
		{"\x00\x7f", `\x00\x7f`, `\x00\x7f`},
		{"\u0085\u009b31m", `\u0085\u009b31m`, `\u0085\u009b31m`},
		{"\u2028\u2029\u202e\u2066", `\u2028\u2029\u202e\u2066`, `\u2028\u2029\u202e\u2066`},
		{"bad \xff\xc3 end", `bad \xff\xc3 end`, `bad \xff\xc3 end`},
		{"", "", ""},
	} {
		if got := kycd.Escaped(c.in); got != c.line {
			t.Errorf("Escaped(%q) = %q, want %q", c.in, got, c.line)
		}
		if got := kycd.EscapedBlock(c.in); got != c.block {
			t.Errorf("EscapedBlock(%q) = %q, want %q", c.in, got, c.block)
		}
	}
}

// An audit target never holds a control character, whatever it names.
func TestAuditTargetEscaped(t *testing.T) {
	t.Parallel()
	if got, want := kycd.AuditTarget("sink", "\x1b]0;x\x07\r\nforged"), `sink:\x1b]0;x\x07\x0d\x0aforged`; got != want {
		t.Errorf("AuditTarget = %q, want %q", got, want)
	}
	if got, want := kycd.SubjectTarget(kycd.SubjectRef{Type: "user\n", ID: "\u009b"}), `subject:user\x0a:\u009b`; got != want {
		t.Errorf("SubjectTarget = %q, want %q", got, want)
	}
}

func TestValidPrefix(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"},   // é is two bytes: the cut would split it
		{"a€b", 3, "a"},  // € is three
		{"a€b", 4, "a€"}, // a cut after it keeps it
		{"a\x00b", 10, "a\uFFFDb"},
		{"a\xffb", 10, "a\uFFFDb"},
	} {
		if got := kycd.ValidPrefix(c.in, c.n); got != c.want {
			t.Errorf("ValidPrefix(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
