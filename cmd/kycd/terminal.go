package main

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/kycd/kycd"
)

// What kycd prints for a person comes partly from the outside (reason
// messages, event types, quarantined bodies, audit targets), and a control
// character in it would reach the operator's terminal. So every value of a
// human-readable output goes through shown, and every body through
// shownBlock (kycd.Escaped); --json output goes through printJSON, which
// escapes the few that encoding/json writes raw (jsonSafe). See
// docs/decisions.md.

// shown is s as one line for a terminal (kycd.Escaped).
func shown(s string) string { return kycd.Escaped(s) }

// shownBlock is s, a text of several lines, for a terminal: LF and TAB are
// kept, every other control is escaped (kycd.EscapedBlock).
func shownBlock(s string) string { return kycd.EscapedBlock(s) }

// jsonSafe rewrites the control characters that encoding/json writes raw
// (DEL, C1, the bidirectional controls: kycd.IsControl) as \u escapes: the
// JSON means the same, and its bytes hold no control character but the LF
// of its indentation. The encoder has already escaped C0, U+2028/9 and
// invalid UTF-8, and the others can only be inside strings.
func jsonSafe(b []byte) []byte {
	if kycd.EscapedBlock(string(b)) == string(b) {
		return b
	}
	var out bytes.Buffer
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r >= 0x7f && kycd.IsControl(r) {
			fmt.Fprintf(&out, `\u%04x`, r)
		} else {
			out.Write(b[i : i+size])
		}
		i += size
	}
	return out.Bytes()
}
