package main

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// What kycd prints for a person comes partly from the outside: reason
// messages and event types from Ralio, quarantined bodies from anyone who
// can reach the webhook, audit targets from request paths. A control
// character in them would reach the operator's terminal, which acts on it
// (ESC starts a sequence that can retitle the window, move the cursor or
// rewrite what is on screen; CR and LF forge lines). So every value of a
// human-readable output goes through shown, and every body through
// shownBlock; --json output through printJSON, which escapes the few that
// encoding/json lets through. See docs/decisions.md.

// shown is s as one line of text for a terminal: C0 controls (TAB, LF and
// CR too: a value never spans lines or columns), DEL and C1 controls
// (U+0080–U+009F) are written as \xNN and \u00NN, the Unicode line and
// paragraph separators and the bidirectional overrides and isolates as
// \uNNNN, and each byte of invalid UTF-8 as \xNN. Everything else, a
// backslash included, is shown as it is: the escapes are for reading, not
// for decoding back.
func shown(s string) string {
	return escape(s, false)
}

// shownBlock is like shown for a text of several lines, a body: LF and TAB
// are kept, CR and every other control are escaped.
func shownBlock(s string) string {
	return escape(s, true)
}

func escape(s string, block bool) string {
	if clean(s, block) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case block && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case hidden(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// clean reports whether s needs no escape, the common case, without
// building a copy.
func clean(s string, block bool) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && !(block && (c == '\n' || c == '\t'))) || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || hidden(r) {
			return false
		}
		i += size
	}
	return true
}

// hidden reports the characters above ASCII that a terminal acts on or
// that change how a line reads: C1 controls, the line and paragraph
// separators, and the bidirectional embeddings, overrides and isolates.
func hidden(r rune) bool {
	return (r >= 0x80 && r <= 0x9f) || r == 0x2028 || r == 0x2029 ||
		(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// jsonSafe rewrites the characters that encoding/json writes raw and a
// terminal acts on (DEL, C1, the bidirectional controls) as \u escapes:
// the JSON means the same, and its bytes hold no control character. The
// encoder has already escaped C0, U+2028/9 and invalid UTF-8, and these
// characters can only be inside strings.
func jsonSafe(b []byte) []byte {
	if clean(string(b), true) {
		return b
	}
	var out bytes.Buffer
	s := string(b)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == 0x7f || hidden(r) {
			fmt.Fprintf(&out, `\u%04x`, r)
		} else {
			out.WriteString(s[i : i+size])
		}
		i += size
	}
	return out.Bytes()
}
