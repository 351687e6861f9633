package kycd

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Text that kycd shows or records comes partly from the outside: reason
// messages and event types from Ralio, quarantined bodies from anyone who
// reaches the webhook, ids and names from request paths. A control
// character in it would reach a terminal, which acts on it (ESC starts a
// sequence that can retitle the window, move the cursor or rewrite the
// screen; CR and LF forge lines). Escaped is the one rule for making such
// text safe to show: the CLI shows every value through it, and every audit
// target is built with it.

// Escaped is s as one line of plain text: each control character
// (IsControl: TAB, LF and CR too, so a value never spans lines or
// columns) is written as \xNN below U+0080 and as \uNNNN above, and each
// byte of invalid UTF-8 as \xNN. Everything else, a backslash included,
// is kept as it is: the escapes are for reading, not for decoding back.
func Escaped(s string) string { return escape(s, false) }

// EscapedBlock is Escaped for a text of several lines, such as a body: LF
// and TAB are kept.
func EscapedBlock(s string) string { return escape(s, true) }

// IsControl reports the characters a terminal acts on or that change how
// a line reads: C0 controls, DEL, C1 controls (U+0080–U+009F), the line
// and paragraph separators (U+2028, U+2029) and the bidirectional
// embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069).
func IsControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029 ||
		(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
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
		case IsControl(r) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case IsControl(r):
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
		if c := s[i]; c < utf8.RuneSelf {
			if IsControl(rune(c)) && (!block || (c != '\n' && c != '\t')) {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || IsControl(r) {
			return false
		}
		i += size
	}
	return true
}

// ValidPrefix is the start of s, at most n bytes cut at a character's
// boundary, as text any store keeps: invalid UTF-8 and NUL (which
// PostgreSQL's text refuses) become U+FFFD. A receiver's answer is
// kept so, whatever bytes it sent.
func ValidPrefix(s string, n int) string {
	if len(s) > n {
		s = s[:n]
		// Drop a character the cut split: at most utf8.UTFMax-1 bytes.
		for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax; i-- {
			if utf8.RuneStart(s[i]) {
				if !utf8.FullRuneInString(s[i:]) {
					s = s[:i]
				}
				break
			}
		}
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
