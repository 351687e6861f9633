package kycd

import (
	"encoding/base64"
	"strings"
	"time"
)

// EncodeCursor makes the opaque cursor of a list page from the sort time
// and id of its last row, so the next page starts right after that row
// however many rows were added meanwhile.
func EncodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(t.UTC().Format(time.RFC3339Nano) + "|" + id))
}

// DecodeCursor reads a cursor of EncodeCursor; anything else is EINVALID.
func DecodeCursor(c string) (time.Time, string, error) {
	if b, err := base64.RawURLEncoding.DecodeString(c); err == nil {
		if at, id, ok := strings.Cut(string(b), "|"); ok {
			if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
				return t, id, nil
			}
		}
	}
	return time.Time{}, "", Errorf(EINVALID, "cursor %q is not one this API gave out", c)
}

// PageLimit clamps a requested page size to 1..500, 50 by default.
func PageLimit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 500:
		return 500
	}
	return n
}

// Page is one page of a list: at most the limit asked for, and the cursor
// that continues after its last item ("" on the last page). Every list of
// kycd is made by NewPage, never by a copy of its arithmetic.
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// NewPage makes the page of rows read with a limit of limit+1 (Store reads
// take that limit from the caller as it is): the first limit rows, and
// when there was one more, the cursor of the last row kept.
func NewPage[T any](rows []T, limit int, cursor func(T) string) Page[T] {
	if len(rows) <= limit {
		return Page[T]{Items: rows}
	}
	rows = rows[:limit]
	return Page[T]{Items: rows, NextCursor: cursor(rows[limit-1])}
}

// Position is a row's place in a list's order: its sort time and id. A
// page continues right after the position of the previous page's last
// row, so rows added meanwhile neither repeat nor go missing. The cursor
// a client holds is a Position encoded (Cursor); stores are given the
// decoded Position, never the cursor.
type Position struct {
	At time.Time
	ID string
}

// IsZero reports whether p is no position: a list's first page.
func (p Position) IsZero() bool { return p.ID == "" && p.At.IsZero() }

// Cursor encodes p for a client (EncodeCursor).
func (p Position) Cursor() string { return EncodeCursor(p.At, p.ID) }

// ParsePosition decodes a client's cursor: the zero Position for "", and
// EINVALID for a cursor that is not one of Cursor's.
func ParsePosition(cursor string) (Position, error) {
	if cursor == "" {
		return Position{}, nil
	}
	t, id, err := DecodeCursor(cursor)
	if err != nil {
		return Position{}, err
	}
	return Position{At: t, ID: id}, nil
}
